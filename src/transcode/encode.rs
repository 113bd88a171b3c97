//! A ladder from one source: the source decoded once (per chunk, [`chunks`]), split, scaled
//! and encoded to every rung (H.264 High, `split` + `scale`), with IDR frames exactly where the
//! packager will cut, so that every rung has the same segment boundaries and a player can
//! switch at any segment (RFC 8216 § 6.2.4: renditions of a variant stream share their
//! segment boundaries for seamless switching; Apple's HLS authoring specification 1.10).
//!
//! - With the source kept as the top rung, the cuts are the ones the packager makes in the
//!   source (its own sync samples, the first at or after each target duration): each rung
//!   gets IDR frames at those times and nowhere else, so the packager cuts it the same way.
//! - Without it, the rungs are cut every target duration exactly, and the audio is encoded
//!   (or copied, when it is AAC already) into a file of its own.
//! - Sound the packager cannot carry (PCM from a camera) is encoded to AAC-LC stereo in a file
//!   of its own either way; the title then has the source's picture and that sound.
//! - A surround source (six channels or more) gets AAC 5.1 too, as a second audio rendition
//!   beside the stereo one (copied when it is AAC 5.1 already).
//!
//! ffmpeg reads the source over HTTP from 127.0.0.1 ([`SourceServer`]): ranged reads of the
//! store, never a whole-file copy. The rungs go to a scratch folder that is removed when the
//! [`Encoded`] is dropped, failure or not.

use crate::error::{Error, Result, RetryClass};
use crate::media::model::{Codec, Movie, Track, TrackKind};
use crate::media::mp4::{demux, Limits};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::package::{derived_etag, displayed_resolution, upload_identity, Input};
use crate::media::plan;
use crate::media::source::{read_vec, FileSource, Source};
use crate::transcode::args::{KeyFrames, Output, Run, Shots, Sound};
use crate::transcode::chunks::{self, Chunk};
use crate::transcode::ffmpeg::{Ffmpeg, Progress};
use crate::transcode::ladder::Ladder;
use crate::transcode::preview::{self, Thumbnails};
use crate::transcode::probe;
use crate::transcode::serve::SourceServer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to make of one source.
#[derive(Debug, Clone)]
pub struct LadderSettings {
    pub ladder: Ladder,
    /// Keep the source as the top rung when the packager can carry it.
    pub keep_source: bool,
    /// The packager's target segment duration, seconds.
    pub segment_duration: f64,
    /// x264's preset: speed against size at the same quality.
    pub preset: String,
    /// The whole encode is stopped past this.
    pub timeout: Duration,
    /// The video is encoded in chunks of about this many seconds, cut at the source's key
    /// frames ([`chunks`]); 0: in one run.
    pub chunk_seconds: f64,
    /// Chunks encoded at once.
    pub concurrency: usize,
    /// One chunk's encode is stopped past this, and tried again (twice at most).
    pub chunk_timeout: Duration,
}

/// The chunk length when none is configured: long enough that x264's rate control settles
/// (a few GOPs), short enough that the cores of one machine stay busy to the end (60 s of
/// 1080p on two cores: 142 s in 10 s chunks, 156 s in 30 s ones, where the last chunk runs
/// alone) and that a 60-minute title is 360 parts to share across a fleet.
pub const DEFAULT_CHUNK_SECONDS: f64 = 10.0;
/// `Err` says why `secs` is no chunk length: 0 (no chunks) or 2 to 3600 seconds.
pub fn check_chunk_seconds(secs: f64) -> std::result::Result<(), String> {
    if secs == 0.0 || (2.0..=3600.0).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "chunk length {secs} s is neither 0 (no chunks) nor 2 to 3600 s"
        ))
    }
}

/// Tries of one part: a part whose ffmpeg was killed or timed out runs again alone.
const PART_TRIES: u32 = 3;

impl LadderSettings {
    pub fn new(ladder: Ladder, keep_source: bool, segment_duration: f64) -> LadderSettings {
        LadderSettings {
            ladder,
            keep_source,
            segment_duration,
            preset: "veryfast".into(),
            timeout: Duration::from_secs(6 * 3600),
            chunk_seconds: DEFAULT_CHUNK_SECONDS,
            concurrency: 2,
            chunk_timeout: Duration::from_secs(1800),
        }
    }

    /// What goes into the title's version: the same source and these settings give the
    /// same rungs.
    /// Chunks change the bytes (x264's rate control runs per chunk), so they are part of it;
    /// how many run at once is not.
    pub fn describe(&self) -> String {
        let chunks = if self.chunk_seconds > 0.0 {
            format!("{}s", self.chunk_seconds)
        } else {
            "off".into()
        };
        format!(
            "ladder={};keep-source={};preset={};chunks={chunks};x264-high-yuv420p;aac-lc-128k-stereo;aac-lc-384k-5.1",
            self.ladder, self.keep_source, self.preset
        )
    }
}

/// What the manifest records of a ladder (DESIGN.md "Object layout": `manifest.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TranscodeReport {
    /// [`LadderSettings::describe`].
    pub settings: String,
    /// The ffmpeg that made it (`ffmpeg version 5.1.9-0+deb12u1`).
    pub ffmpeg: String,
    /// Each rung: `720p:3000k 1280x720`.
    pub rungs: Vec<String>,
    /// Whether the source is the top rung.
    pub source_kept: bool,
    /// Wall time of the encode.
    pub seconds: f64,
    /// Chunks the video was encoded in (1: in one run).
    #[serde(default = "one")]
    pub chunks: usize,
    /// Each part's wall time where this job ran it (`rest`, `chunk-00000` …), seconds; empty
    /// when the fleet ran the parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartTime>,
    /// Reading the parts back into rungs (the stitch's demuxing), seconds.
    #[serde(default)]
    pub stitch_seconds: f64,
    /// The poster, in the version's folder (`poster.jpg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    /// The thumbnails' WebVTT track, in the version's folder (`thumbnails.vtt`), whose cues
    /// name rectangles of `thumbnails.jpg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnails: Option<String>,
}

/// One part's wall time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartTime {
    pub part: String,
    pub seconds: f64,
}

/// The encoded rungs (in a scratch folder removed on drop, or in the store).
pub struct Encoded {
    pub outputs: Vec<Output>,
    /// Each output's bytes, in the same order: the file, or the rung stitched from its chunks.
    sources: Vec<Arc<dyn Source>>,
    /// Chunks the video was encoded in (1: one run).
    pub chunks: usize,
    /// Each part's wall time, when they ran here.
    pub part_times: Vec<PartTime>,
    /// [`TranscodeReport::stitch_seconds`].
    pub stitch_seconds: f64,
    /// Whether the source is the top rung (asked for, and the packager can carry it).
    pub source_kept: bool,
    /// The poster and the thumbnail sprite, with its WebVTT track (none for sound only).
    pub previews: Option<Previews>,
    /// The segments the title will have, known from the source before any encode.
    pub planned: PlannedSegments,
    /// The fingerprint of the source's `moov` (zero when only ffprobe could read it): the
    /// upload's identity in the version when it has no ETag.
    source_fingerprint: [u8; 32],
    /// Where the encode wrote, when it was here.
    scratch: Option<Scratch>,
}

/// A title's segments as planned from the source's cut times, before any encode: what a
/// playlist published while the rungs are still encoding must declare from its first
/// version on (RFC 8216 § 6.2.1: `EXT-X-TARGETDURATION` never changes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedSegments {
    /// Segments per rendition.
    pub count: usize,
    /// A target duration no segment's `EXTINF` rounds above: the longest planned segment
    /// plus the slack of an IDR frame forced one frame late (a rung's frame falls at or
    /// after the planned time) and of an audio frame's nearest boundary.
    pub target_duration: u64,
}

/// The preview images ([`preview`]) and the sprite's track.
pub struct Previews {
    pub poster: Arc<dyn Source>,
    pub sprite: Arc<dyn Source>,
    pub track: String,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("outputs", &self.outputs)
            .field("chunks", &self.chunks)
            .field("source_kept", &self.source_kept)
            .field("folder", &self.scratch.as_ref().map(|s| &s.0))
            .finish_non_exhaustive()
    }
}

impl Encoded {
    /// The title's packager inputs: `originals` (the upload, as the caller opened it) first
    /// when the source is kept as the top rung, then [`Encoded::inputs`].
    pub fn with_originals(&self, originals: Vec<Input>) -> Result<Vec<Input>> {
        let from = upload_identity(
            originals.first().and_then(|o| o.etag.as_deref()),
            &self.source_fingerprint,
        );
        let mut all = if self.source_kept {
            originals
        } else {
            Vec::new()
        };
        all.extend(self.inputs(&from)?);
        Ok(all)
    }

    /// The outputs as the packager's inputs, in order, each marked as derived from the
    /// upload whose identity is `from` ([`derived_etag`]): the title's version is its
    /// upload's and the ladder settings' (`Settings::transcode`), known without reading the
    /// rungs, and never the same for two uploads.
    fn inputs(&self, from: &str) -> Result<Vec<Input>> {
        self.outputs
            .iter()
            .zip(&self.sources)
            .map(|(o, source)| {
                let name = o.path.file_name().map(|n| n.to_string_lossy().into_owned());
                Ok(Input {
                    source: Arc::clone(source),
                    etag: Some(derived_etag(&name.unwrap_or_default(), from)),
                })
            })
            .collect()
    }

    /// The poster, the sprite and its track as objects of the version `version`
    /// (`v/<version>/poster.jpg` …), written with the title's segments.
    pub fn preview_objects(&self, version: &str) -> Result<Vec<Object>> {
        let Some(p) = &self.previews else {
            return Ok(Vec::new());
        };
        let read = |source: &Arc<dyn Source>| read_vec(source.as_ref(), 0, source.len());
        let object = |name: &str, content_type, bytes| Object {
            key: format!("v/{version}/{name}"),
            content_type,
            cache_control: cache_control::IMMUTABLE,
            body: Body::from_bytes(bytes),
        };
        Ok(vec![
            object(preview::POSTER, content_type::JPEG, read(&p.poster)?),
            object(preview::SPRITE, content_type::JPEG, read(&p.sprite)?),
            object(
                preview::TRACK,
                content_type::WEBVTT,
                p.track.clone().into_bytes(),
            ),
        ])
    }

    /// What the manifest records.
    pub fn report(
        &self,
        settings: &LadderSettings,
        ffmpeg: &Ffmpeg,
        seconds: f64,
    ) -> TranscodeReport {
        TranscodeReport {
            settings: settings.describe(),
            ffmpeg: ffmpeg.version.clone(),
            rungs: self
                .outputs
                .iter()
                .filter_map(|o| Some(format!("{} {}x{}", o.rung?, o.size?.0, o.size?.1)))
                .collect(),
            source_kept: self.source_kept,
            seconds,
            chunks: self.chunks,
            parts: self.part_times.clone(),
            stitch_seconds: self.stitch_seconds,
            poster: self.previews.as_ref().map(|_| preview::POSTER.to_owned()),
            thumbnails: self.previews.as_ref().map(|_| preview::TRACK.to_owned()),
        }
    }
}

fn one() -> usize {
    1
}

/// A folder under the system's temporary directory, removed with everything in it on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Result<Scratch> {
        let mut token = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        let dir = std::env::temp_dir().join(format!("hlspipe-ladder-{}", hex::encode(token)));
        std::fs::create_dir(&dir).map_err(|e| Error::Io {
            what: dir.display().to_string(),
            source: e,
        })?;
        Ok(Scratch(dir))
    }
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One run of ffmpeg of a ladder's encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// A video encoded in one run: every rung, the sound and the previews, one decode.
    Rest,
    /// A video encoded in chunks: the poster and the sprite, from the key frames only.
    Previews,
    /// A video encoded in chunks: the sound, whole.
    Sound,
    /// One chunk of the video, to every rung.
    Chunk(usize),
}

impl Part {
    /// Its folder's name among the encode's files: `rest`, `previews`, `sound`, `chunk-00003`.
    pub fn name(self) -> String {
        match self {
            Part::Rest => "rest".into(),
            Part::Previews => "previews".into(),
            Part::Sound => "sound".into(),
            Part::Chunk(i) => format!("chunk-{i:05}"),
        }
    }

    pub fn parse(name: &str) -> Option<Part> {
        match name {
            "rest" => return Some(Part::Rest),
            "previews" => return Some(Part::Previews),
            "sound" => return Some(Part::Sound),
            _ => {}
        }
        let digits = name.strip_prefix("chunk-")?;
        (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok().map(Part::Chunk))
            .flatten()
    }
}

/// A ladder's encode, planned from the source: what each [`Part`] makes, and how the parts'
/// files make the rungs. The parts run here ([`encode_ladder`]) or on other workers, each
/// writing its files under `<part>/`; [`LadderJob::assemble`] then reads them from
/// wherever they were put.
pub struct LadderJob {
    source: Arc<dyn Source>,
    server: SourceServer,
    facts: Facts,
    /// The rungs, by file name (`360p.mp4`).
    videos: Vec<Output>,
    audio: Vec<(Output, Sound)>,
    thumbnails: Option<Thumbnails>,
    /// The video's chunks: empty when it is encoded in one run.
    chunks: Vec<Chunk>,
    settings: LadderSettings,
}

impl LadderJob {
    pub fn plan(
        ffmpeg: &Ffmpeg,
        source: Arc<dyn Source>,
        settings: &LadderSettings,
    ) -> Result<LadderJob> {
        let server = SourceServer::start(Arc::clone(&source)).map_err(|e| Error::Io {
            what: "the source server for ffmpeg".into(),
            source: e,
        })?;
        let facts = Facts::of(ffmpeg, source.as_ref(), server.url(), settings)?;
        let rungs = settings
            .ladder
            .rungs_for(facts.display, facts.kbps, facts.keep);
        let videos: Vec<Output> = rungs
            .iter()
            .map(|r| Output {
                path: format!("{}p.mp4", r.lines).into(),
                rung: Some(*r),
                size: Some(r.size_for(facts.display)),
            })
            .collect();
        let audio = facts.audio.map(SourceSound::files).unwrap_or_default();
        let chunks = match &facts.video {
            Some(video) if !videos.is_empty() && settings.chunk_seconds > 0.0 => {
                let only_at = facts.keep.then(|| facts.cut_times());
                chunks::plan(video, settings.chunk_seconds, only_at.as_deref())
            }
            _ => Vec::new(),
        };
        Ok(LadderJob {
            source,
            server,
            thumbnails: Thumbnails::plan(facts.duration, facts.display),
            facts,
            videos,
            audio,
            chunks: if chunks.len() > 1 { chunks } else { Vec::new() },
            settings: settings.clone(),
        })
    }

    /// The parts to run. In chunks: the previews and the sound first (each reads the whole
    /// source; the chunks fill the cores after them), each a part of its own so that across
    /// a fleet neither waits for the other.
    pub fn parts(&self) -> Vec<Part> {
        let candidates = if self.chunks.is_empty() {
            vec![Part::Rest]
        } else {
            vec![Part::Previews, Part::Sound]
        };
        let mut parts: Vec<Part> = candidates
            .into_iter()
            .filter(|&p| !self.whole_source_run(p, Path::new("")).is_empty())
            .collect();
        parts.extend(self.chunks.iter().map(|c| Part::Chunk(c.index)));
        parts
    }

    /// The part whose folder holds the previews (`previews`) or the sound (and, in one run,
    /// everything).
    fn home_of_rest(&self, previews: bool) -> Part {
        match (self.chunks.is_empty(), previews) {
            (true, _) => Part::Rest,
            (false, true) => Part::Previews,
            (false, false) => Part::Sound,
        }
    }

    /// Seconds of video: what progress counts to.
    pub fn duration(&self) -> f64 {
        self.facts.duration
    }

    /// The segments every rendition will have: cut at the planned cut times
    /// ([`Facts::cut_times`]), to the end of the video.
    pub fn planned(&self) -> PlannedSegments {
        let end = self.facts.duration;
        let mut bounds = vec![0.0];
        bounds.extend(self.facts.cut_times().into_iter().filter(|&t| t < end));
        bounds.push(end);
        let longest = bounds.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let frame = self.facts.video.as_ref().map_or(0.0, |v| {
            let longest = v.samples.iter().map(|s| s.duration).max().unwrap_or(0);
            f64::from(longest) / f64::from(v.timescale.max(1))
        });
        PlannedSegments {
            count: bounds.len() - 1,
            target_duration: ((longest + frame + PLAN_SLACK_SECS).round() as u64).max(1),
        }
    }

    /// The run of `part` (the rest, the previews or the sound) that reads the whole source,
    /// writing into `folder`.
    fn whole_source_run(&self, part: Part, folder: &Path) -> Run<'_> {
        let at = |o: &Output| Output {
            path: folder.join(&o.path),
            ..o.clone()
        };
        let (videos, sound, shots) = match part {
            Part::Rest => (true, true, true),
            Part::Previews => (false, false, true),
            Part::Sound => (false, true, false),
            Part::Chunk(_) => (false, false, false),
        };
        Run {
            input: self.server.url(),
            key_frames_only: part == Part::Previews,
            videos: if videos {
                self.videos.iter().map(at).collect()
            } else {
                Vec::new()
            },
            keyframes: self.facts.keyframes.clone(),
            audio: if sound {
                self.audio
                    .iter()
                    .map(|(o, sound)| (at(o), *sound))
                    .collect()
            } else {
                Vec::new()
            },
            shots: self.thumbnails.filter(|_| shots).map(|thumbnails| Shots {
                poster: folder.join(preview::POSTER),
                sprite: folder.join(preview::SPRITE),
                thumbnails,
                duration: self.facts.duration,
                display: self.facts.display,
            }),
            preset: &self.settings.preset,
        }
    }

    /// Runs one part, writing its files under `root/<part>/`, and tries it again alone
    /// (twice at most) when its ffmpeg is killed or runs out of time; stops at `until`.
    /// `progress` gets the seconds of video the part has done. Returns the files' names,
    /// relative to `root`.
    pub fn encode_part(
        &self,
        ffmpeg: &Ffmpeg,
        part: Part,
        root: &Path,
        until: Instant,
        progress: &dyn Fn(f64),
    ) -> Result<Vec<String>> {
        let folder = root.join(part.name());
        std::fs::create_dir_all(&folder).map_err(|e| Error::Io {
            what: folder.display().to_string(),
            source: e,
        })?;
        let (run, _server, limit) = match part {
            Part::Rest | Part::Sound => (
                self.whole_source_run(part, &folder),
                None,
                self.settings.timeout,
            ),
            Part::Previews => {
                // The previews decode key frames only: ffmpeg reads those alone.
                let server = match &self.facts.video {
                    Some(video) => {
                        let body = chunks::key_frames_source(video, Arc::clone(&self.source));
                        Some(SourceServer::start(Arc::new(body)).map_err(|e| Error::Io {
                            what: "the key frames' server for ffmpeg".into(),
                            source: e,
                        })?)
                    }
                    None => None,
                };
                (
                    self.whole_source_run(part, &folder),
                    server,
                    self.settings.timeout,
                )
            }
            Part::Chunk(i) => {
                let (Some(chunk), Some(video)) = (self.chunks.get(i), &self.facts.video) else {
                    return Err(Error::Transcode {
                        reason: format!("the ladder has no {}", part.name()),
                        class: RetryClass::Permanent,
                    });
                };
                let body = chunks::chunk_source(video, chunk, Arc::clone(&self.source));
                let server = SourceServer::start(Arc::new(body)).map_err(|e| Error::Io {
                    what: "the chunk server for ffmpeg".into(),
                    source: e,
                })?;
                let run = Run {
                    input: "",
                    key_frames_only: false,
                    videos: self
                        .videos
                        .iter()
                        .map(|o| Output {
                            path: folder.join(&o.path),
                            ..o.clone()
                        })
                        .collect(),
                    keyframes: KeyFrames::At(chunk.key_frames(&self.facts.cut_times())),
                    audio: Vec::new(),
                    shots: None,
                    preset: &self.settings.preset,
                };
                (run, Some(server), self.settings.chunk_timeout)
            }
        };
        let run = Run {
            input: _server.as_ref().map_or(run.input, |s| s.url()),
            ..run
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Transcode {
                    reason: format!("{}: out of time before ffmpeg ran", part.name()),
                    class: RetryClass::Retryable,
                });
            }
            let ran = ffmpeg.run(&run.arguments(), limit.min(left), &mut |p: Progress| {
                progress(p.out_secs)
            });
            match ran {
                Ok(()) => break,
                Err(Error::Transcode {
                    reason,
                    class: RetryClass::Retryable,
                }) if tries < PART_TRIES => {
                    tracing::warn!(part = %part.name(), %reason, "ffmpeg failed; trying the part again");
                }
                Err(Error::Transcode { reason, class }) => {
                    return Err(Error::Transcode {
                        reason: format!("{}: {reason}", part.name()),
                        class,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        let mut files: Vec<&Path> = run.videos.iter().map(|o| o.path.as_path()).collect();
        files.extend(run.audio.iter().map(|(o, _)| o.path.as_path()));
        if let Some(s) = &run.shots {
            files.extend([s.poster.as_path(), s.sprite.as_path()]);
        }
        Ok(files
            .iter()
            .filter_map(|f| f.strip_prefix(root).ok())
            .map(|f| f.to_string_lossy().into_owned())
            .collect())
    }

    /// The rungs, the sound and the previews from the parts' files, which `open` reads
    /// (by their names relative to the encode's root); `scratch`, where they are when they
    /// are here, lives as long as the result.
    pub fn assemble(
        &self,
        open: &dyn Fn(&str) -> Result<Arc<dyn Source>>,
        scratch: Option<Scratch>,
    ) -> Result<Encoded> {
        self.assemble_upto(open, scratch, self.chunks.len())
    }

    /// [`LadderJob::assemble`] from the first `chunks` chunks only (all of them: the
    /// whole), once the previews and the sound are done: a title that ends where they end.
    fn assemble_upto(
        &self,
        open: &dyn Fn(&str) -> Result<Arc<dyn Source>>,
        scratch: Option<Scratch>,
        chunks: usize,
    ) -> Result<Encoded> {
        let started = Instant::now();
        let rest = |name: &Path| format!("{}/{}", self.home_of_rest(false).name(), name.display());
        let shot = |name: &str| format!("{}/{name}", self.home_of_rest(true).name());
        let mut outputs = Vec::new();
        let mut sources = Vec::new();
        for video in &self.videos {
            let source: Arc<dyn Source> = if self.chunks.is_empty() {
                open(&rest(&video.path))?
            } else {
                let parts = self
                    .chunks
                    .iter()
                    .take(chunks)
                    .map(|c| {
                        open(&format!(
                            "{}/{}",
                            Part::Chunk(c.index).name(),
                            video.path.display()
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let name = format!("{} (stitched)", video.path.display());
                Arc::new(chunks::stitch(parts, name)?)
            };
            outputs.push(video.clone());
            sources.push(source);
        }
        for (audio, _) in &self.audio {
            outputs.push(audio.clone());
            sources.push(open(&rest(&audio.path))?);
        }
        let previews = match &self.thumbnails {
            Some(t) => Some(Previews {
                poster: open(&shot(preview::POSTER))?,
                sprite: open(&shot(preview::SPRITE))?,
                track: t.track(self.facts.duration),
            }),
            None => None,
        };
        Ok(Encoded {
            outputs,
            sources,
            part_times: Vec::new(),
            stitch_seconds: started.elapsed().as_secs_f64(),
            chunks: self.chunks.len().max(1),
            source_kept: self.facts.keep,
            previews,
            planned: self.planned(),
            source_fingerprint: self.facts.fingerprint,
            scratch,
        })
    }

    /// The number of chunks a partial title can be made of once `done` are encoded: the
    /// leading chunks done, when the parts that read the whole source are done too.
    fn leading_chunks(&self, done: &std::collections::BTreeSet<Part>) -> usize {
        let whole_source_done = self
            .parts()
            .iter()
            .all(|p| matches!(p, Part::Chunk(_)) || done.contains(p));
        if !whole_source_done {
            return 0;
        }
        self.chunks
            .iter()
            .take_while(|c| done.contains(&Part::Chunk(c.index)))
            .count()
    }
}

/// Added to a planned segment's length before it is rounded to a target duration: an audio
/// segment's end falls on the nearest audio frame (AAC: 21 ms at 48 kHz), besides the
/// video's frame.
const PLAN_SLACK_SECS: f64 = 0.05;

/// Encodes the ladder of `source` here (see the module's notes), its parts `concurrency`
/// at a time. `progress` gets the seconds of video done so far, and of the whole. In chunks,
/// `partial` gets the title as far as the chunks done without a gap from the first go
/// (its rungs end there), each time that grows, while the rest encode: what a progressive
/// publish writes ahead.
pub fn encode_ladder(
    ffmpeg: &Ffmpeg,
    source: Arc<dyn Source>,
    settings: &LadderSettings,
    progress: &(dyn Fn(f64, f64) + Sync),
    partial: Option<&(dyn Fn(Encoded) + Sync)>,
) -> Result<Encoded> {
    let job = LadderJob::plan(ffmpeg, source, settings)?;
    let scratch = Scratch::new()?;
    let until = Instant::now() + settings.timeout;
    let parts = job.parts();
    let done = Mutex::new(BTreeMap::new());
    let times = Mutex::new(BTreeMap::new());
    let root = scratch.0.clone();
    let open = |name: &str| Ok(Arc::new(FileSource::open(&root.join(name))?) as Arc<dyn Source>);
    // The parts finished, and the leading chunks last handed to `partial`.
    let finished = Mutex::new((std::collections::BTreeSet::new(), 0usize));
    chunks::run_all(&parts, settings.concurrency, &|&part| {
        // Progress counts the video: the chunks, or the one run.
        let counted = matches!(part, Part::Chunk(_)) || job.chunks.is_empty();
        let started = Instant::now();
        job.encode_part(ffmpeg, part, &scratch.0, until, &|secs| {
            if counted {
                let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                done.insert(part, secs);
                progress(done.values().sum(), job.duration());
            }
        })?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(part = %part.name(), seconds, "ladder part encoded");
        times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(part, seconds);
        let Some(partial) = partial else {
            return Ok(());
        };
        let grew = {
            let mut f = finished.lock().unwrap_or_else(|p| p.into_inner());
            f.0.insert(part);
            let leading = job.leading_chunks(&f.0);
            let grew = leading > f.1 && leading < job.chunks.len();
            f.1 = f.1.max(leading);
            grew.then_some(leading)
        };
        if let Some(leading) = grew {
            // A partial title that cannot be read is only a missed head start.
            match job.assemble_upto(&open, None, leading) {
                Ok(encoded) => partial(encoded),
                Err(e) => tracing::warn!(error = %e, "the chunks done could not be assembled"),
            }
        }
        Ok(())
    })?;
    let mut encoded = job.assemble(&open, Some(scratch))?;
    encoded.part_times = times
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|(part, seconds)| PartTime {
            part: part.name(),
            seconds,
        })
        .collect();
    Ok(encoded)
}

/// What the encode needs to know of the source.
struct Facts {
    /// The picture as displayed.
    display: (u32, u32),
    kbps: u32,
    /// The source stays the top rung.
    keep: bool,
    keyframes: KeyFrames,
    /// The source's sound, when audio files are to be made of it.
    audio: Option<SourceSound>,
    /// Seconds of video (0 for sound only).
    duration: f64,
    /// The source's video, when the demuxer carries it: what chunks are cut from.
    video: Option<Track>,
    /// The `moov`'s fingerprint, when the demuxer read it (else zero).
    fingerprint: [u8; 32],
}

/// The source's first audio track, as far as making AAC of it goes.
#[derive(Debug, Clone, Copy)]
struct SourceSound {
    aac: bool,
    channels: u32,
}

impl SourceSound {
    /// The sound files to make: AAC stereo (copied when the source is AAC stereo already),
    /// and for a surround source (six channels or more) its 5.1 layout too, as a second
    /// rendition (copied when it is AAC 5.1 already). Stereo comes first: the master's
    /// default, what every device plays.
    fn files(self) -> Vec<(Output, Sound)> {
        let file = |name: &str, sound| {
            let out = Output {
                path: name.into(),
                rung: None,
                size: None,
            };
            (out, sound)
        };
        if self.channels >= 6 {
            let surround = if self.aac && self.channels == 6 {
                Sound::Copy
            } else {
                Sound::Surround
            };
            vec![
                file("audio.mp4", Sound::Stereo),
                file("audio_5.1.mp4", surround),
            ]
        } else if self.aac {
            vec![file("audio.mp4", Sound::Copy)]
        } else {
            vec![file("audio.mp4", Sound::Stereo)]
        }
    }
}

impl Facts {
    /// From the demuxer's reading of the source; from ffprobe's when the demuxer has no video
    /// track of it (a codec the packager cannot carry: MPEG-4 Part 2, ProRes): then every rung
    /// and the audio are encoded, in one run.
    fn of(
        ffmpeg: &Ffmpeg,
        source: &dyn Source,
        url: &str,
        settings: &LadderSettings,
    ) -> Result<Facts> {
        let movie = demux(source, 0, &Limits::default());
        if let Ok(movie) = &movie {
            if let Some(video) = movie.tracks.iter().find(|t| t.kind == TrackKind::Video) {
                let mut facts = Facts::of_track(movie, video, settings);
                if let Some(sound) = facts.audio.as_mut().filter(|s| s.channels == 0) {
                    // Sound the demuxer does not carry: ffprobe counts its channels.
                    let probed = probe::probe(&ffmpeg.ffprobe(), url);
                    sound.channels = probed.map_or(2, |p| p.audio_channels);
                }
                return Ok(facts);
            }
            if no_video(movie).is_some() {
                // Sound only: nothing to make a ladder of; the source is packaged as it is.
                return Ok(Facts {
                    display: (0, 0),
                    kbps: 0,
                    keep: true,
                    keyframes: KeyFrames::Every(settings.segment_duration),
                    audio: None,
                    duration: 0.0,
                    video: None,
                    fingerprint: movie.fingerprint,
                });
            }
        }
        let probed = match probe::probe(&ffmpeg.ffprobe(), url) {
            Ok(p) => p,
            // What the demuxer said is the better reason when ffprobe cannot read it either.
            Err(probe_error) => {
                return Err(match movie {
                    Err(e) => e,
                    Ok(movie) => no_video(&movie).unwrap_or(probe_error),
                })
            }
        };
        Ok(Facts {
            display: probed.display,
            kbps: probed.kbps,
            keep: false,
            keyframes: KeyFrames::Every(settings.segment_duration),
            audio: probed.has_audio.then_some(SourceSound {
                aac: probed.audio_is_aac,
                channels: probed.audio_channels,
            }),
            duration: probed.duration,
            video: None,
            fingerprint: movie.as_ref().map_or([0; 32], |m| m.fingerprint),
        })
    }

    fn of_track(movie: &Movie, video: &Track, settings: &LadderSettings) -> Facts {
        let display = displayed_resolution(video);
        let keep = settings.keep_source;
        let keyframes = if keep {
            let plan = plan::split_at_sync(video, settings.segment_duration);
            KeyFrames::At(plan::cut_times(&plan, video.timescale))
        } else {
            KeyFrames::Every(settings.segment_duration)
        };
        let carried = movie.tracks.iter().find(|t| t.kind == TrackKind::Audio);
        // Sound the packager cannot carry (a camera's PCM) becomes AAC, source kept or not.
        let uncarried = carried.is_none()
            && movie
                .skipped
                .iter()
                .any(|s| s.uncarried == Some(TrackKind::Audio));
        let audio = match carried {
            Some(t) if !keep => Some(SourceSound {
                aac: matches!(t.codec, Codec::Aac { .. }),
                channels: u32::from(t.channels),
            }),
            // Channels unknown to the demuxer: counted by ffprobe (`Facts::of`).
            _ => uncarried.then_some(SourceSound {
                aac: false,
                channels: 0,
            }),
        };
        Facts {
            display: (u32::from(display.0), u32::from(display.1)),
            kbps: u32::try_from(source_kbps(video) / 1000).unwrap_or(u32::MAX),
            keep,
            keyframes,
            audio,
            duration: video.duration_secs(),
            video: Some(video.clone()),
            fingerprint: movie.fingerprint,
        }
    }

    /// Every time (seconds) a rung gets an IDR frame at, after the first.
    fn cut_times(&self) -> Vec<f64> {
        match &self.keyframes {
            KeyFrames::At(times) => times.clone(),
            KeyFrames::Every(step) if *step > 0.0 => (1..)
                .map(|n| f64::from(n) * step)
                .take_while(|t| *t < self.duration)
                .collect(),
            KeyFrames::Every(_) => Vec::new(),
        }
    }
}

/// A source without a video track that has no picture at all (sound only), as opposed to
/// one whose picture the packager cannot carry.
fn no_video(movie: &Movie) -> Option<Error> {
    let uncarried = movie
        .skipped
        .iter()
        .any(|s| s.uncarried == Some(TrackKind::Video));
    (!uncarried).then(|| Error::NoUsableTrack("a ladder needs a video track".into()))
}

/// The video's average bit rate in bits per second.
fn source_kbps(video: &Track) -> u64 {
    let bytes: u64 = video.samples.iter().map(|s| u64::from(s.size)).sum();
    let secs = video.duration_secs();
    if secs > 0.0 {
        (bytes as f64 * 8.0 / secs) as u64
    } else {
        0
    }
}
