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

use crate::error::{Error, Result, RetryClass};
use crate::media::object::Object;
use crate::media::package::{GrowingPlaylist, PackagedTitle};
use crate::media::source::Source;
use crate::pipeline::manifest::{jitter, UPDATE_ATTEMPTS};
use crate::pipeline::pool::try_map_bounded;
use crate::pipeline::publish::{
    flip, is_present, present_objects, publish_with, write_all, write_one, PublishOptions,
};
use crate::store::{Precondition, Store};
use std::collections::{HashMap, HashSet};
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

/// A title still being encoded, as planned from its source: what its growing playlists
/// declare from their first version on ([`crate::transcode::encode::PlannedSegments`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowPlan {
    /// `EXT-X-TARGETDURATION` of every growing playlist.
    pub target_duration: u64,
    /// Segments each rendition will have: what progress counts to.
    pub segments_per_rendition: usize,
}

/// Writes `title` progressively and returns the ETag of the final master (as
/// [`crate::pipeline::publish::publish`] does). `report` hears of the growth after every round of playlist
/// writes. A title whose segments are all written already (by the fleet's shares) and that
/// has no growing playlist yet has nothing to grow: it is published whole. `plan`: the
/// plan the title's partial rounds ([`publish_partial`]) grew its playlists by, if any.
pub fn publish_progressively(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
    report: &(dyn Fn(Growth) + Sync),
    plan: Option<GrowPlan>,
) -> Result<String> {
    let present = present_objects(store, title, opts.prefix)?;
    let grown_before = title
        .growing
        .iter()
        .any(|g| present.contains_key(&format!("{}{}", opts.prefix, g.key)));
    let listed: HashSet<&str> = title
        .growing
        .iter()
        .flat_map(|g| g.segments.iter().map(String::as_str))
        .collect();
    let mut segments = title
        .media
        .iter()
        .filter(|o| listed.contains(o.key.as_str()));
    // Growing playlists from a run that stopped must still get their end, even when every
    // segment is there already: players that started on them would wait for more forever.
    if !grown_before && segments.all(|o| is_present(o, &present, opts)) {
        return publish_with(store, title, sources, &present, opts);
    }
    let round = Round {
        store,
        title,
        sources,
        present: &present,
        opts,
        report,
        target: plan.map(|p| p.target_duration),
    };
    let whole: Vec<usize> = title.growing.iter().map(|g| g.segments.len()).collect();
    let grower = round.grow(&whole, whole.iter().sum())?;
    grower.finish()?;
    let vod: Vec<&Object> = title.playlists.iter().collect();
    write_all(store, &vod, sources, &present, opts)?;
    flip(store, &title.master, sources, opts)
}

/// Writes ahead what a title whose first chunks only are encoded (`title`, made of them)
/// has in common with the whole: every rendition's segments but its last (which ends where
/// the chunks end, not where the whole title cuts), the init segments and the previews;
/// grows the playlists by them and puts the master out once every rendition lists one.
/// The segments are the whole title's to the byte (their cuts, numbers and times depend
/// only on the samples before them), so the final [`publish_progressively`] finds them
/// written and goes on.
pub fn publish_partial(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
    report: &(dyn Fn(Growth) + Sync),
    plan: GrowPlan,
) -> Result<()> {
    let present = present_objects(store, title, opts.prefix)?;
    // Every rendition is cut where the reference rendition is: a rendition's entry is final
    // when it ends at or before the last cut the partial reference has made.
    let common = title.growing.iter().map(|g| g.segments.len()).min();
    let upto = common.unwrap_or(0).saturating_sub(1);
    let limits = vec![upto; title.growing.len()];
    let longest = title.growing.iter().map(|g| g.target_duration(upto)).max();
    if let Some(longest) = longest.filter(|&t| t > plan.target_duration) {
        // Never expected (the plan allows a frame's slack); the whole title's publish
        // declares the length it has instead.
        return Err(Error::Transcode {
            reason: format!(
                "a segment rounds to {longest} s, longer than the {} s planned",
                plan.target_duration
            ),
            class: RetryClass::Permanent,
        });
    }
    let round = Round {
        store,
        title,
        sources,
        present: &present,
        opts,
        report,
        target: Some(plan.target_duration),
    };
    round.grow(&limits, plan.segments_per_rendition * title.growing.len())?;
    Ok(())
}

/// One round of writes of a progressive publish.
struct Round<'a> {
    store: &'a dyn Store,
    title: &'a PackagedTitle,
    sources: &'a [Arc<dyn Source>],
    present: &'a HashMap<String, u64>,
    opts: &'a PublishOptions<'a>,
    report: &'a (dyn Fn(Growth) + Sync),
    target: Option<u64>,
}

impl<'a> Round<'a> {
    /// Writes the objects no playlist lists, then each playlist's first `limits` entries in
    /// play order, growing the playlists as they are written; `total`: the segments the
    /// whole title will have, for the report.
    fn grow(&self, limits: &[usize], total: usize) -> Result<Grower<'_>> {
        let title = self.title;
        let mut entry_of: HashMap<&str, (usize, usize)> = HashMap::new();
        for (p, g) in title.growing.iter().enumerate() {
            for (i, key) in g.segments.iter().enumerate() {
                entry_of.insert(key.as_str(), (p, i));
            }
        }
        let unlisted: Vec<&Object> = title
            .media
            .iter()
            .filter(|o| !entry_of.contains_key(o.key.as_str()))
            .collect();
        write_all(self.store, &unlisted, self.sources, self.present, self.opts)?;
        let starts: Vec<Vec<f64>> = title.growing.iter().map(start_times).collect();
        let when = |o: &Object| {
            let (p, i) = entry_of.get(o.key.as_str()).copied().unwrap_or_default();
            (starts[p][i], p)
        };
        let mut listed: Vec<&Object> = title
            .media
            .iter()
            .filter(|o| {
                entry_of
                    .get(o.key.as_str())
                    .is_some_and(|&(p, i)| i < limits.get(p).copied().unwrap_or(0))
            })
            .collect();
        listed.sort_by(|a, b| {
            let (ta, pa) = when(a);
            let (tb, pb) = when(b);
            ta.total_cmp(&tb).then(pa.cmp(&pb))
        });
        let grower = Grower::new(self, limits, total)?;
        try_map_bounded(&listed, self.opts.concurrency, |obj| {
            write_one(
                self.store,
                obj,
                self.sources,
                self.present,
                self.opts,
                listed.len(),
            )?;
            let (p, i) = entry_of.get(obj.key.as_str()).copied().unwrap_or_default();
            grower.written(p, i)
        })?;
        Ok(grower)
    }
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
    round: &'a Round<'a>,
    /// Per playlist: the entries this round lists at most.
    limits: Vec<usize>,
    /// The segments of the whole title, for the report.
    total: usize,
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
    /// It has `EXT-X-ENDLIST`.
    ended: bool,
    at: Option<Instant>,
    etag: Option<String>,
}

impl<'a> Grower<'a> {
    /// Starts from what the store has: the playlists an earlier round (or a job that
    /// stopped) grew, and whether the master naming them is out.
    fn new(round: &'a Round<'a>, limits: &[usize], total: usize) -> Result<Grower<'a>> {
        let title = round.title;
        let mut listed = Vec::with_capacity(title.growing.len());
        for g in &title.growing {
            let key = format!("{}{}", round.opts.prefix, g.key);
            let there = match round.present.contains_key(&key) {
                true => round.store.get_versioned(&key)?,
                false => None,
            };
            listed.push(match there {
                Some(v) => Listed {
                    entries: entries_in(&v.bytes).0,
                    ended: entries_in(&v.bytes).1,
                    at: None,
                    etag: Some(v.etag),
                },
                None => Listed::default(),
            });
        }
        let master_out = match title.growing.first() {
            Some(g) if listed.iter().all(|l| l.entries > 0) => {
                let key = format!("{}{}", round.opts.prefix, title.master.key);
                let master = round.store.get_versioned(&key)?;
                master.is_some_and(|m| String::from_utf8_lossy(&m.bytes).contains(&g.key))
            }
            _ => false,
        };
        Ok(Grower {
            round,
            limits: limits.to_vec(),
            total,
            state: Mutex::new(GrowState {
                written: title
                    .growing
                    .iter()
                    .map(|g| vec![false; g.segments.len()])
                    .collect(),
                segments_done: 0,
                ready: vec![0; title.growing.len()],
                listed,
                master_out,
            }),
        })
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
        let round = self.round;
        for (q, g) in round.title.growing.iter().enumerate() {
            let (ready, listed) = (s.ready[q].min(self.limits[q]), &mut s.listed[q]);
            let due =
                listed.at.is_none_or(|t| t.elapsed() >= REWRITE_EVERY) || ready == self.limits[q];
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
                round.store,
                &round.title.event_master(),
                round.sources,
                round.opts,
            )?;
            s.master_out = true;
        }
        (round.report)(self.growth(s));
        Ok(())
    }

    fn growth(&self, s: &GrowState) -> Growth {
        let playable = self
            .round
            .title
            .growing
            .iter()
            .zip(&s.listed)
            .map(|(g, l)| g.seconds(l.entries))
            .fold(f64::INFINITY, f64::min);
        Growth {
            segments_done: s.segments_done,
            segments_total: self.total.max(s.segments_done),
            seconds_playable: if playable.is_finite() { playable } else { 0.0 },
            playable: s.master_out,
        }
    }

    /// Every segment is written: each growing playlist gets its last version, with
    /// `EXT-X-ENDLIST`.
    fn finish(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *state;
        for (g, listed) in self.round.title.growing.iter().zip(&mut s.listed) {
            if !(listed.ended && listed.entries == g.segments.len()) {
                self.put_growing(g, g.segments.len(), true, listed)?;
            }
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
        let round = self.round;
        let obj = g.object(upto, ended, round.target);
        let key = format!("{}{}", round.opts.prefix, g.key);
        let mut attempt = 0;
        loop {
            // First over our own last version; after a lost race, over what is there.
            let condition = match &listed.etag {
                Some(etag) => Precondition::Etag(etag),
                None => Precondition::Absent,
            };
            match round.store.put_if(&key, &obj, &[], condition) {
                Ok(etag) => {
                    (round.opts.progress)(obj.body.len());
                    *listed = Listed {
                        entries: upto,
                        ended,
                        at: Some(Instant::now()),
                        etag: Some(etag),
                    };
                    return Ok(());
                }
                Err(e) if e.precondition_failed() && attempt + 1 < UPDATE_ATTEMPTS => {
                    attempt += 1;
                    let Some(there) = round.store.get_versioned(&key)? else {
                        listed.etag = None;
                        continue;
                    };
                    let (entries, there_ended) = entries_in(&there.bytes);
                    if entries > upto || (entries == upto && (there_ended || !ended)) {
                        // Another job is ahead: its version stands.
                        *listed = Listed {
                            entries,
                            ended: there_ended,
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

/// The entries a growing playlist's text lists, and whether it has ended.
fn entries_in(bytes: &[u8]) -> (usize, bool) {
    let text = String::from_utf8_lossy(bytes);
    (
        text.lines().filter(|l| l.starts_with("#EXTINF:")).count(),
        text.lines().any(|l| l == "#EXT-X-ENDLIST"),
    )
}
