//! A ladder from one source in one ffmpeg run: the source decoded once, split, scaled and
//! encoded to every rung (H.264 High, `split` + `scale`), with IDR frames exactly where the
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
//!
//! ffmpeg reads the source over HTTP from 127.0.0.1 ([`SourceServer`]): ranged reads of the
//! store, never a whole-file copy. The rungs go to a scratch folder that is removed when the
//! [`Encoded`] is dropped, failure or not.

use crate::error::{Error, Result};
use crate::media::model::{Codec, Movie, Track, TrackKind};
use crate::media::mp4::{demux, Limits};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::package::{derived_etag, displayed_resolution, Input};
use crate::media::plan;
use crate::media::source::{FileSource, Source};
use crate::transcode::ffmpeg::{Ffmpeg, Progress};
use crate::transcode::ladder::{Ladder, Rung};
use crate::transcode::preview::{self, poster_filter, Thumbnails};
use crate::transcode::probe;
use crate::transcode::serve::SourceServer;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
}

impl LadderSettings {
    pub fn new(ladder: Ladder, keep_source: bool, segment_duration: f64) -> LadderSettings {
        LadderSettings {
            ladder,
            keep_source,
            segment_duration,
            preset: "veryfast".into(),
            timeout: Duration::from_secs(6 * 3600),
        }
    }

    /// What goes into the title's version: the same source and these settings give the
    /// same rungs.
    pub fn describe(&self) -> String {
        format!(
            "ladder={};keep-source={};preset={};x264-high-yuv420p;aac-lc-128k-stereo",
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
    /// The poster, in the version's folder (`poster.jpg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    /// The thumbnails' WebVTT track, in the version's folder (`thumbnails.vtt`), whose cues
    /// name rectangles of `thumbnails.jpg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnails: Option<String>,
}

/// One file the encode made.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: PathBuf,
    /// The rung it is, or `None` for the audio file.
    pub rung: Option<Rung>,
    /// Its picture size.
    pub size: Option<(u32, u32)>,
}

/// The encoded rungs, in a scratch folder removed on drop.
#[derive(Debug)]
pub struct Encoded {
    pub outputs: Vec<Output>,
    /// Whether the source is the top rung (asked for, and the packager can carry it).
    pub source_kept: bool,
    /// The poster and the thumbnail sprite, with its WebVTT track (none for sound only).
    pub previews: Option<Previews>,
    scratch: Scratch,
}

/// The preview images ([`preview`]) in the scratch folder, and the sprite's track.
#[derive(Debug)]
pub struct Previews {
    pub poster: PathBuf,
    pub sprite: PathBuf,
    pub track: String,
}

impl Encoded {
    /// The outputs as the packager's inputs, in order, each marked as derived (its ETag
    /// `derived:<file>`): the title's version is its upload's and the ladder settings'
    /// (`Settings::transcode`), known without reading the rungs.
    pub fn inputs(&self) -> Result<Vec<Input>> {
        self.outputs
            .iter()
            .map(|o| {
                let name = o.path.file_name().map(|n| n.to_string_lossy().into_owned());
                Ok(Input {
                    source: Arc::new(FileSource::open(&o.path)?),
                    etag: Some(derived_etag(&name.unwrap_or_default())),
                })
            })
            .collect()
    }

    pub fn folder(&self) -> &Path {
        &self.scratch.0
    }

    /// The poster, the sprite and its track as objects of the version `version`
    /// (`v/<version>/poster.jpg` …), written with the title's segments.
    pub fn preview_objects(&self, version: &str) -> Result<Vec<Object>> {
        let Some(p) = &self.previews else {
            return Ok(Vec::new());
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| Error::Io {
                what: path.display().to_string(),
                source: e,
            })
        };
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
            poster: self.previews.as_ref().map(|_| preview::POSTER.to_owned()),
            thumbnails: self.previews.as_ref().map(|_| preview::TRACK.to_owned()),
        }
    }
}

/// A folder under the system's temporary directory, removed with everything in it on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
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

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Encodes the ladder of `source` (see the module's notes). `progress` gets the seconds of
/// media done so far.
pub fn encode_ladder(
    ffmpeg: &Ffmpeg,
    source: Arc<dyn Source>,
    settings: &LadderSettings,
    progress: &mut dyn FnMut(f64),
) -> Result<Encoded> {
    let server = SourceServer::start(Arc::clone(&source)).map_err(|e| Error::Io {
        what: "the source server for ffmpeg".into(),
        source: e,
    })?;
    let facts = Facts::of(ffmpeg, source.as_ref(), server.url(), settings)?;
    let rungs = settings
        .ladder
        .rungs_for(facts.display, facts.kbps, facts.keep);
    let scratch = Scratch::new()?;
    let mut outputs: Vec<Output> = rungs
        .iter()
        .map(|r| Output {
            path: scratch.0.join(format!("{}p.mp4", r.lines)),
            rung: Some(*r),
            size: Some(r.size_for(facts.display)),
        })
        .collect();
    if facts.audio.is_some() {
        outputs.push(Output {
            path: scratch.0.join("audio.mp4"),
            rung: None,
            size: None,
        });
    }
    let thumbnails = Thumbnails::plan(facts.duration, facts.display);
    let previews = thumbnails.map(|t| Previews {
        poster: scratch.0.join(preview::POSTER),
        sprite: scratch.0.join(preview::SPRITE),
        track: t.track(facts.duration),
    });
    if !outputs.is_empty() || previews.is_some() {
        let shots = previews.as_ref().zip(thumbnails);
        let args = arguments(server.url(), &outputs, shots, &facts, settings);
        ffmpeg.run(&args, settings.timeout, &mut |p: Progress| {
            progress(p.out_secs)
        })?;
    }
    Ok(Encoded {
        outputs,
        source_kept: facts.keep,
        previews,
        scratch,
    })
}

/// What the encode needs to know of the source.
struct Facts {
    /// The picture as displayed.
    display: (u32, u32),
    kbps: u32,
    /// The source stays the top rung.
    keep: bool,
    keyframes: KeyFrames,
    /// An audio file to make: `Some(true)` copies AAC, `Some(false)` encodes AAC.
    audio: Option<bool>,
    /// Seconds of video (0 for sound only).
    duration: f64,
}

impl Facts {
    /// From the demuxer's reading of the source; from ffprobe's when the demuxer has no video
    /// track of it (a codec the packager cannot carry: MPEG-4 Part 2, ProRes): then every rung
    /// and the audio are encoded.
    fn of(
        ffmpeg: &Ffmpeg,
        source: &dyn Source,
        url: &str,
        settings: &LadderSettings,
    ) -> Result<Facts> {
        let movie = demux(source, 0, &Limits::default());
        if let Ok(movie) = &movie {
            if let Some(video) = movie.tracks.iter().find(|t| t.kind == TrackKind::Video) {
                return Ok(Facts::of_track(movie, video, settings));
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
            audio: probed.has_audio.then_some(probed.audio_is_aac),
            duration: probed.duration,
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
            Some(t) if !keep => Some(matches!(t.codec, Codec::Aac { .. })),
            _ => uncarried.then_some(false),
        };
        Facts {
            display: (u32::from(display.0), u32::from(display.1)),
            kbps: u32::try_from(source_kbps(video) / 1000).unwrap_or(u32::MAX),
            keep,
            keyframes,
            audio,
            duration: video.duration_secs(),
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

/// Where the rungs' IDR frames go.
enum KeyFrames {
    /// At these presentation times (seconds), and at the start.
    At(Vec<f64>),
    /// Every this many seconds.
    Every(f64),
}

impl KeyFrames {
    fn expression(&self) -> String {
        match self {
            KeyFrames::Every(secs) => format!("expr:gte(t,n_forced*{secs})"),
            KeyFrames::At(times) => {
                let mut list = String::from("0");
                for t in times {
                    list.push_str(&format!(",{t:.6}"));
                }
                list
            }
        }
    }
}

fn arguments(
    input: &str,
    outputs: &[Output],
    previews: Option<(&Previews, Thumbnails)>,
    facts: &Facts,
    settings: &LadderSettings,
) -> Vec<OsString> {
    let mut a = Args::default();
    a.push(&[
        "-y",
        "-fflags",
        "+bitexact",
        "-i",
        input,
        "-map_metadata",
        "-1",
    ]);
    let videos: Vec<&Output> = outputs.iter().filter(|o| o.rung.is_some()).collect();
    let shots = previews.map(|(_, t)| (poster_filter(facts.duration, facts.display), t.filter()));
    if !videos.is_empty() || shots.is_some() {
        a.push(&["-filter_complex", &filter_graph(&videos, shots.as_ref())]);
    }
    if let Some((p, _)) = previews {
        for (label, path) in [("[poster]", &p.poster), ("[thumbs]", &p.sprite)] {
            a.push(&[
                "-map",
                label,
                "-frames:v",
                "1",
                "-update",
                "1",
                "-c:v",
                "mjpeg",
            ]);
            a.push(&["-q:v", "4", "-flags:v", "+bitexact", "-f", "image2"]);
            a.0.push(path.clone().into_os_string());
        }
    }
    let force = facts.keyframes.expression();
    for (i, out) in videos.iter().enumerate() {
        let Some(rung) = out.rung else { continue };
        let (kbps, max, buf) = (rung.kbps, rung.kbps * 11 / 10, rung.kbps * 2);
        a.push(&["-map", &format!("[v{i}]"), "-an", "-sn", "-dn"]);
        a.push(&[
            "-c:v",
            "libx264",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
        ]);
        a.push(&["-preset", &settings.preset, "-b:v", &format!("{kbps}k")]);
        a.push(&[
            "-maxrate",
            &format!("{max}k"),
            "-bufsize",
            &format!("{buf}k"),
        ]);
        // x264's rate control (VBV) with frame threads is not repeatable from run to run;
        // with sliced threads it is, and the same input and settings give the same bytes.
        a.push(&["-x264-params", "sliced-threads=1"]);
        // IDR frames where the packager cuts and nowhere else: no scene cuts, no GOP limit.
        a.push(&[
            "-force_key_frames",
            &force,
            "-sc_threshold",
            "0",
            "-g",
            "100000",
        ]);
        a.push(&["-flags:v", "+cgop+bitexact", "-fps_mode", "passthrough"]);
        a.push(&MP4_OUTPUT);
        a.0.push(out.path.clone().into_os_string());
    }
    if let Some(out) = outputs.iter().find(|o| o.rung.is_none()) {
        a.push(&["-map", "0:a:0", "-vn", "-sn", "-dn"]);
        if facts.audio == Some(true) {
            a.push(&["-c:a", "copy"]);
        } else {
            a.push(&[
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-ac",
                "2",
                "-flags:a",
                "+bitexact",
            ]);
        }
        a.push(&MP4_OUTPUT);
        a.0.push(out.path.clone().into_os_string());
    }
    a.0
}

/// Each output: MP4, without `btrt` (its average rate differs from run to run, and the
/// packager copies the sample entry into the init segment, which must be byte-identical),
/// without the muxer's version and times.
const MP4_OUTPUT: [&str; 6] = ["-f", "mp4", "-write_btrt", "0", "-fflags", "+bitexact"];

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(OsString::from));
    }
}

/// `[0:v:0]split=N[s0]…[sN-1]; [s0]scale=W:H,setsar=1[v0]; …`: one decode for every rung,
/// and for the poster and the thumbnails (`shots`: their filters) when they are made.
fn filter_graph(videos: &[&Output], shots: Option<&(String, String)>) -> String {
    let n = videos.len() + if shots.is_some() { 2 } else { 0 };
    let mut graph = format!("[0:v:0]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, out) in videos.iter().enumerate() {
        let (w, h) = out.size.unwrap_or((2, 2));
        graph.push_str(&format!(
            ";[s{i}]scale={w}:{h}:flags=bicubic,setsar=1[v{i}]"
        ));
    }
    if let Some((poster, thumbs)) = shots {
        let (p, t) = (videos.len(), videos.len() + 1);
        graph.push_str(&format!(";[s{p}]{poster}[poster];[s{t}]{thumbs}[thumbs]"));
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decode_feeds_every_rung() {
        let outs = [
            Output {
                path: "a".into(),
                rung: Some(Rung {
                    lines: 360,
                    kbps: 365,
                }),
                size: Some((640, 360)),
            },
            Output {
                path: "b".into(),
                rung: Some(Rung {
                    lines: 720,
                    kbps: 3000,
                }),
                size: Some((1280, 720)),
            },
        ];
        let refs: Vec<&Output> = outs.iter().collect();
        assert_eq!(
            filter_graph(&refs, None),
            "[0:v:0]split=2[s0][s1];[s0]scale=640:360:flags=bicubic,setsar=1[v0];\
             [s1]scale=1280:720:flags=bicubic,setsar=1[v1]"
        );
        assert_eq!(KeyFrames::Every(6.0).expression(), "expr:gte(t,n_forced*6)");
        assert_eq!(
            KeyFrames::At(vec![6.006, 12.0]).expression(),
            "0,6.006000,12.000000"
        );
    }
}
