//! Inputs and settings in, the title's objects out, grouped in publish order.
//! Pure: no storage, no clock. `publish` writes what this returns.

use crate::error::{Error, Result};
use crate::media::eac3::Ec3Config;
use crate::media::fmp4::{create_init_segment, create_media_segment};
use crate::media::hls::codecs::{codecs_string, language_tag, supplemental_codecs};
use crate::media::hls::{self};
use crate::media::model::{AudioFormat, Codec, Movie, Track, TrackKind};
use crate::media::mp4::{demux, pixel_aspect_ratio, Limits};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::plan::{self, SegmentRange};
use crate::media::rendition::{bit_rate, unique_name};
pub use crate::media::rendition::{GrowingPlaylist, Input, Rendition, EVENT_PLAYLIST};
use crate::media::subtitles;
pub use crate::media::subtitles::SubtitleInput;
use sha2::{Digest, Sha256};

/// Bumped whenever the bytes we write for the same input and settings change, so a
/// new packager never reuses an old version's path (DESIGN.md "Object layout").
/// 2: the source's rotation matrix in `tkhd`, the AAC channel count from the
/// AudioSpecificConfig, `VIDEO-RANGE` and displayed `RESOLUTION` in the master.
/// 3: where presentation starts is the init segment's edit list for video too (B-frame
/// delay, trim points) instead of negative composition offsets; trims are applied.
/// 4: MP3 channels from the first frame header, not the sample entry (a mono MP3 that
/// ffmpeg wrote with channelcount 2 now has 1 in its init segment and `CHANNELS="1"`);
/// `RESOLUTION` scaled by a non-square `pasp` pixel aspect ratio; `tx3g` tracks carried as
/// WebVTT subtitle renditions (a title published before keeps no subtitles otherwise).
pub const FORMAT_VERSION: &str = "hlspipe-fmp4-4";

/// Packaging settings. Everything here goes into the version hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Target segment duration in seconds.
    pub segment_duration: f64,
    pub limits: Limits,
    /// The transcoding stage's settings, when inputs were made by it (a ladder's rungs):
    /// those inputs carry an ETag `derived:…` and their bytes are a function of the other
    /// inputs and of this, so the version hashes this instead of them.
    pub transcode: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            segment_duration: 6.0,
            limits: Limits::default(),
            transcode: None,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        let d = self.segment_duration;
        if !(d.is_finite() && (0.5..=60.0).contains(&d)) {
            return Err(Error::Settings(format!(
                "segment duration {d} s is outside 0.5..=60"
            )));
        }
        Ok(())
    }
}

/// What became of one track of an input. The manifest lists every track, so nothing is
/// dropped silently: a rendition, the same audio as another input's rendition (a ladder
/// repeats its audio in every file), or skipped with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackReport {
    /// The input's name (its key or path).
    pub input: String,
    /// `tkhd` track_ID in the input.
    pub track: u32,
    /// Video or audio for the tracks hlspipe reads; absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TrackKind>,
    /// The sample entry type (`avc1`, `mp4a`, `ec-3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(flatten)]
    pub outcome: TrackOutcome,
}

/// [`TrackReport::outcome`], written as `"became": "rendition" | "same_as" | "skipped"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "became", rename_all = "snake_case")]
pub enum TrackOutcome {
    Rendition { rendition: String },
    SameAs { rendition: String },
    Skipped { reason: String },
}

/// A packaged title: objects in publish order.
pub struct PackagedTitle {
    pub version: String,
    pub renditions: Vec<Rendition>,
    /// Every track of every input and what became of it.
    pub tracks: Vec<TrackReport>,
    /// Stage 1: init and media segments, all under `v/<version>/`.
    pub media: Vec<Object>,
    /// Stage 2: media playlists, also under `v/<version>/`.
    pub playlists: Vec<Object>,
    /// The media playlists again, as a progressive publish grows them (`event.m3u8`): no
    /// I-frame playlists (trick play waits for the complete title).
    pub growing: Vec<GrowingPlaylist>,
    /// Stage 3: `master.m3u8`, the flip.
    pub master: Object,
    /// Presentation duration in seconds (longest rendition).
    pub duration: f64,
    /// Things the user should know (skipped tracks, dropped duplicate audio).
    pub warnings: Vec<String>,
    /// Bytes of media copied from the inputs.
    pub media_bytes: u64,
}

struct Planned<'a> {
    track: &'a Track,
    name: String,
    codecs: String,
    segments: Vec<SegmentRange>,
}

/// Demuxes every input and builds the title.
pub fn package(inputs: &[Input], settings: &Settings) -> Result<PackagedTitle> {
    package_with_subtitles(inputs, &[], settings)
}

/// [`package`], with subtitle side files (`ep1.en.srt`) beside the inputs. Their ETags
/// (or, without one, a hash of their bytes) go into the version.
pub fn package_with_subtitles(
    inputs: &[Input],
    side_files: &[SubtitleInput],
    settings: &Settings,
) -> Result<PackagedTitle> {
    settings.validate()?;
    if inputs.is_empty() {
        return Err(Error::Settings("no input".into()));
    }
    let mut movies = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let movie =
            demux(input.source.as_ref(), i, &settings.limits).map_err(|e| Error::InInput {
                input: input.source.name().to_string(),
                source: Box::new(e),
            })?;
        movies.push(movie);
    }
    refuse_lost_media(inputs, &movies)?;
    build(inputs, &movies, side_files, settings)
}

/// A track is never dropped silently, and a title never loses the picture or the sound its
/// source has: when no input of the title gives it a video (or an audio) rendition, an input
/// with a video (or audio) track hlspipe cannot carry is refused, naming the track and codec.
/// A track that cannot be carried beside one that can (a second audio track, or PCM sound
/// beside the AAC the transcoding stage made of it) is left out with a warning (the CLI and
/// the manifest list it).
fn refuse_lost_media(inputs: &[Input], movies: &[Movie]) -> Result<()> {
    for (kind, what) in [(TrackKind::Video, "picture"), (TrackKind::Audio, "sound")] {
        if movies
            .iter()
            .any(|m| m.tracks.iter().any(|t| t.kind == kind))
        {
            continue;
        }
        for (input, movie) in inputs.iter().zip(movies) {
            let Some(s) = movie.skipped.iter().find(|s| s.uncarried == Some(kind)) else {
                continue;
            };
            let remedy = match kind {
                TrackKind::Audio => {
                    "Re-encode it (AAC), or turn on the ladder (--ladder, \
                                     HLSPIPE_LADDER): the transcoding stage makes AAC of it"
                }
                _ => {
                    "Re-encode it (H.264 or HEVC), or turn on the ladder (--ladder, \
                      HLSPIPE_LADDER): the transcoding stage makes H.264 of it"
                }
            };
            return Err(Error::InInput {
                input: input.source.name().to_string(),
                source: Box::new(Error::Unsupported(format!(
                    "track {}: {}; the title would have no {what}. {remedy}",
                    s.id, s.reason
                ))),
            });
        }
    }
    Ok(())
}

/// The title from demuxed inputs: warnings, the renditions to package, then their
/// objects and the master playlist.
fn build(
    inputs: &[Input],
    movies: &[Movie],
    side_files: &[SubtitleInput],
    settings: &Settings,
) -> Result<PackagedTitle> {
    let version = version(inputs, movies, side_files, settings);
    let mut warnings = skipped_track_warnings(inputs, movies);
    let audios = distinct_audio_tracks(inputs, movies)?;
    let planned = plan_renditions(inputs, movies, &audios, settings.segment_duration)?;
    let subtitles = subtitles::collect(inputs, movies, side_files, &mut warnings);
    let mut title = assemble_title(version, &planned, &subtitles, warnings)?;
    // Subtitle renditions are built in the order of `subtitles`, one each.
    let subtitle_renditions = title
        .renditions
        .iter()
        .filter(|r| r.kind == TrackKind::Subtitles);
    let text_tracks: Vec<((usize, u32), String)> = subtitles
        .iter()
        .zip(subtitle_renditions)
        .filter_map(|(s, r)| s.origin().map(|o| (o, r.name.clone())))
        .collect();
    title.tracks = track_reports(inputs, movies, &planned, &text_tracks);
    Ok(title)
}

/// [`TrackReport`]s in input order, each input's by track_ID.
/// `text_tracks`: the subtitle rendition made of each `tx3g` track, by (input, track_ID).
fn track_reports(
    inputs: &[Input],
    movies: &[Movie],
    planned: &[Planned<'_>],
    text_tracks: &[((usize, u32), String)],
) -> Vec<TrackReport> {
    let mut reports = Vec::new();
    for (i, (input, movie)) in inputs.iter().zip(movies).enumerate() {
        let name = input.source.name().to_string();
        let first = reports.len();
        reports.extend(movie.text_tracks.iter().map(|t| {
            let made = text_tracks.iter().find(|(o, _)| *o == (i, t.id));
            TrackReport {
                input: name.clone(),
                track: t.id,
                kind: Some(TrackKind::Subtitles),
                codec: Some("tx3g".into()),
                outcome: match made {
                    Some((_, rendition)) => TrackOutcome::Rendition {
                        rendition: rendition.clone(),
                    },
                    None => TrackOutcome::Skipped {
                        reason: "its text could not be read (see the warnings)".into(),
                    },
                },
            }
        }));
        for t in &movie.tracks {
            let rendition = |same: fn(&Track, &Track) -> bool| {
                planned
                    .iter()
                    .find(|p| same(p.track, t))
                    .map(|p| p.name.clone())
            };
            let outcome = match rendition(|a, b| std::ptr::eq(a, b)) {
                Some(rendition) => TrackOutcome::Rendition { rendition },
                None => match rendition(same_audio) {
                    Some(rendition) => TrackOutcome::SameAs { rendition },
                    None => TrackOutcome::Skipped {
                        reason: "not packaged".into(),
                    },
                },
            };
            reports.push(TrackReport {
                input: name.clone(),
                track: t.id,
                kind: Some(t.kind),
                codec: t
                    .sample_entry
                    .get(4..8)
                    .map(|f| String::from_utf8_lossy(f).into_owned()),
                outcome,
            });
        }
        reports.extend(
            movie
                .skipped
                .iter()
                .chain(&movie.ignored)
                .map(|s| TrackReport {
                    input: name.clone(),
                    track: s.id,
                    kind: s.uncarried,
                    codec: None,
                    outcome: TrackOutcome::Skipped {
                        reason: s.reason.clone(),
                    },
                }),
        );
        reports[first..].sort_by_key(|r| r.track);
    }
    reports
}

/// The rule [`distinct_audio_tracks`] keeps one of: the same sound in another input.
fn same_audio(a: &Track, b: &Track) -> bool {
    a.kind == TrackKind::Audio
        && b.kind == TrackKind::Audio
        && a.codec == b.codec
        && a.language == b.language
        && a.channels == b.channels
        && a.sample_rate == b.sample_rate
}

/// One warning per track the demuxer skipped, naming its input.
fn skipped_track_warnings(inputs: &[Input], movies: &[Movie]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (input, movie) in inputs.iter().zip(movies) {
        for s in &movie.skipped {
            warnings.push(format!(
                "{}: track {} skipped: {}",
                input.source.name(),
                s.id,
                s.reason
            ));
        }
        for note in &movie.notes {
            warnings.push(format!("{}: {note}", input.source.name()));
        }
    }
    warnings
}

/// The audio tracks of all inputs with their CODECS string, in input order, each
/// distinct audio once.
fn distinct_audio_tracks<'a>(
    inputs: &[Input],
    movies: &'a [Movie],
) -> Result<Vec<(&'a Track, String)>> {
    let mut audios: Vec<(&Track, String)> = Vec::new();
    for t in movies
        .iter()
        .flat_map(|m| &m.tracks)
        .filter(|t| t.kind == TrackKind::Audio)
    {
        let codecs = in_track(inputs, t, codecs_string(&t.codec))?;
        // A ladder repeats the same audio in every file: keep one of each.
        let duplicate = audios.iter().any(|(a, c)| {
            a.input != t.input
                && a.language == t.language
                && a.channels == t.channels
                && a.sample_rate == t.sample_rate
                && *c == codecs
        });
        if duplicate {
            continue;
        }
        audios.push((t, codecs));
    }
    Ok(audios)
}

/// Names and segments every rendition, videos first then audios. Each video is split
/// at its own sync samples; every audio is cut at the first video's segment boundaries
/// (audio-only: the first audio's), so audio segments line up with video segments.
fn plan_renditions<'a>(
    inputs: &[Input],
    movies: &'a [Movie],
    audios: &[(&'a Track, String)],
    target: f64,
) -> Result<Vec<Planned<'a>>> {
    let videos = movies
        .iter()
        .flat_map(|m| &m.tracks)
        .filter(|t| t.kind == TrackKind::Video);
    let mut names = Vec::new();
    let mut planned = Vec::new();
    for t in videos {
        let codecs = in_track(inputs, t, codecs_string(&t.codec))?;
        let name = unique_name(&mut names, format!("video_{}p", t.height));
        planned.push(Planned {
            track: t,
            name,
            codecs,
            segments: plan::split_at_sync(t, target),
        });
    }
    let cuts = match (planned.first(), audios.first()) {
        (Some(v), _) => plan::cut_times(&v.segments, v.track.timescale),
        (None, Some((a, _))) => plan::cut_times(&plan::split_at_sync(a, target), a.timescale),
        (None, None) => return Err(Error::NoUsableTrack("no audio or video track".into())),
    };
    planned.extend(audios.iter().map(|(t, codecs)| Planned {
        track: t,
        name: unique_name(&mut names, format!("audio_{}", t.language)),
        codecs: codecs.clone(),
        segments: plan::split_at(t, &cuts),
    }));
    Ok(planned)
}

/// Builds every planned rendition under `v/<version>/` and the master playlist over them.
fn assemble_title(
    version: String,
    planned: &[Planned<'_>],
    subtitle_tracks: &[subtitles::SubtitleTrack],
    warnings: Vec<String>,
) -> Result<PackagedTitle> {
    let prefix = format!("v/{version}");
    let mut media = Vec::new();
    let mut playlists = Vec::new();
    let mut renditions = Vec::new();
    let mut iframes = Vec::new();
    let mut growing = Vec::new();
    let mut media_bytes = 0u64;
    for p in planned {
        let built = build_rendition(p, &prefix)?;
        media.extend(built.media);
        playlists.extend(built.playlists);
        renditions.push(built.rendition);
        iframes.extend(built.iframe);
        growing.push(built.growing);
        media_bytes += built.media_bytes;
    }
    if !subtitle_tracks.is_empty() {
        let mut names: Vec<String> = renditions.iter().map(|r| r.name.clone()).collect();
        let spans = planned.first().map(reference_spans).unwrap_or_default();
        let built = subtitles::build(subtitle_tracks, &spans, &prefix, &mut names);
        media.extend(built.media);
        playlists.extend(built.playlists);
        renditions.extend(built.renditions);
        growing.extend(built.growing);
    }
    let master = Object {
        key: "master.m3u8".into(),
        content_type: content_type::PLAYLIST,
        cache_control: cache_control::MASTER,
        body: Body::from_bytes(master_text(&renditions, &iframes).into_bytes()),
    };
    let duration = renditions.iter().map(|r| r.duration).fold(0.0, f64::max);
    Ok(PackagedTitle {
        version,
        renditions,
        tracks: Vec::new(),
        media,
        playlists,
        growing,
        master,
        duration,
        warnings,
        media_bytes,
    })
}

impl PackagedTitle {
    /// The master of the title while it is published progressively: the same variants and
    /// renditions, naming the growing playlists, without I-frame variants.
    pub fn event_master(&self) -> Object {
        let renditions: Vec<Rendition> = self
            .renditions
            .iter()
            .map(|r| Rendition {
                playlist: match r.playlist.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{EVENT_PLAYLIST}"),
                    None => EVENT_PLAYLIST.to_string(),
                },
                ..r.clone()
            })
            .collect();
        Object {
            body: Body::from_bytes(master_text(&renditions, &[]).into_bytes()),
            ..self.master.clone()
        }
    }
}

/// The segments of the rendition every other one is cut like (the first video, or the
/// first audio of an audio-only title), as the spans subtitle segments repeat.
fn reference_spans(p: &Planned<'_>) -> Vec<subtitles::Span> {
    let ts = i128::from(p.track.timescale.max(1));
    let ms = |t: i64| u64::try_from((i128::from(t) * 1000 / ts).max(0)).unwrap_or(u64::MAX);
    p.segments
        .iter()
        .map(|r| subtitles::Span {
            start_ms: ms(r.start),
            end_ms: ms(r.start.saturating_add(r.duration)),
            secs: r.duration_secs(p.track.timescale),
        })
        .collect()
}

/// Everything one rendition contributes to the title.
struct BuiltRendition {
    media: Vec<Object>,
    playlists: Vec<Object>,
    growing: GrowingPlaylist,
    rendition: Rendition,
    iframe: Option<hls::IFrameVariant>,
    media_bytes: u64,
}

/// Init segment, media segments, media playlist and (video) I-frame playlist of one
/// rendition, under `<prefix>/<name>/`.
fn build_rendition(p: &Planned<'_>, prefix: &str) -> Result<BuiltRendition> {
    let t = p.track;
    let dir = format!("{prefix}/{}", p.name);
    let segments = build_media_segments(p, &dir);
    let mut media = Vec::with_capacity(1 + segments.objects.len());
    media.push(Object {
        key: format!("{dir}/init.mp4"),
        content_type: content_type::MP4,
        cache_control: cache_control::IMMUTABLE,
        body: Body::from_bytes(create_init_segment(t)),
    });
    media.extend(segments.objects);
    let playlist_key = format!("{dir}/index.m3u8");
    let spec = hls::MediaPlaylistSpec {
        init_uri: Some("init.mp4".into()),
        init_byte_range: None,
        iframes_only: false,
        segments: segments.entries,
    };
    let mut playlists = vec![playlist(&playlist_key, &spec)];
    let growing = GrowingPlaylist::new(&dir, spec);
    let iframe = if t.kind == TrackKind::Video && !segments.key_frames.is_empty() {
        let (object, variant) =
            build_iframe_playlist(p, &dir, &segments.key_frames, segments.totals.secs);
        playlists.push(object);
        Some(variant)
    } else {
        None
    };
    Ok(BuiltRendition {
        media,
        playlists,
        growing,
        rendition: describe_rendition(p, &segments.totals, playlist_key),
        iframe,
        media_bytes: segments.totals.media_bytes,
    })
}

/// What the manifest and the master playlist say about a built rendition.
fn describe_rendition(p: &Planned<'_>, totals: &SegmentTotals, playlist: String) -> Rendition {
    let t = p.track;
    Rendition {
        name: p.name.clone(),
        kind: t.kind,
        codecs: p.codecs.clone(),
        bandwidth: totals.peak,
        average_bandwidth: bit_rate(totals.bytes, totals.secs),
        // As displayed: a portrait phone video is 1080x1920 (DESIGN.md "Media rules").
        resolution: (t.kind == TrackKind::Video).then(|| displayed_resolution(t)),
        frame_rate: t.frame_rate().map(|f| (f * 1000.0).round() / 1000.0),
        video_range: (t.kind == TrackKind::Video).then(|| t.video_range()),
        language: (t.kind == TrackKind::Audio).then(|| t.language.clone()),
        channels: (t.kind == TrackKind::Audio).then_some(t.channels),
        joc_complexity: joc_complexity(&t.codec),
        supplemental_codecs: supplemental_codecs(&t.codec),
        duration: totals.secs,
        segment_count: p.segments.len(),
        playlist,
        forced: false,
        characteristics: None,
    }
}

/// `RESOLUTION` as the picture is shown (DESIGN.md "Media rules"): the width scaled by the
/// `pasp` pixel aspect ratio (anamorphic 320x180 with 4:3 pixels shows as 427x180, as
/// ffmpeg and QuickTime compute it), then turned by the matrix.
pub fn displayed_resolution(t: &Track) -> (u16, u16) {
    let width = match pixel_aspect_ratio(&t.sample_entry) {
        Some((h, v)) if h != v => {
            let scaled = (u64::from(t.width) * u64::from(h) + u64::from(v) / 2) / u64::from(v);
            u16::try_from(scaled).unwrap_or(t.width)
        }
        _ => t.width,
    };
    if t.quarter_turn() {
        (t.height, width)
    } else {
        (width, t.height)
    }
}

/// The Dolby Atmos complexity index of an E-AC-3 track's `dec3`, if it has one.
fn joc_complexity(codec: &Codec) -> Option<u8> {
    match codec {
        Codec::Audio {
            format: AudioFormat::Eac3,
            config,
        } => Ec3Config::parse(config.get(8..)?).ok()?.joc_complexity,
        _ => None,
    }
}

/// A key frame for trick play: (segment URI, byte range, presentation start).
type KeyFrame = (String, (u64, u64), i64);

/// A rendition's media segments, with what its playlists and bit rates need from them.
struct MediaSegments {
    /// `seg_NNNNN.m4s` objects, in order.
    objects: Vec<Object>,
    /// The media playlist's entries, one per segment.
    entries: Vec<hls::SegmentEntry>,
    key_frames: Vec<KeyFrame>,
    totals: SegmentTotals,
}

/// Sizes and durations summed over a rendition's media segments.
#[derive(Default)]
struct SegmentTotals {
    /// Peak segment bit rate (bits/s).
    peak: u64,
    /// Bytes of the segments as written.
    bytes: u64,
    secs: f64,
    /// Bytes of samples copied from the input.
    media_bytes: u64,
}

/// Muxes each planned segment into a media segment under `dir`, noting where its
/// fragments start with a sync sample (the I-frame playlist's entries).
fn build_media_segments(p: &Planned<'_>, dir: &str) -> MediaSegments {
    let t = p.track;
    let mut out = MediaSegments {
        objects: Vec::with_capacity(p.segments.len()),
        entries: Vec::with_capacity(p.segments.len()),
        key_frames: Vec::new(),
        totals: SegmentTotals::default(),
    };
    let mut sequence = 1u32;
    for (k, range) in p.segments.iter().enumerate() {
        let segment = create_media_segment(t, range, &mut sequence);
        let uri = format!("seg_{:05}.m4s", k + 1);
        let secs = range.duration_secs(t.timescale);
        let bytes = segment.body.len();
        let totals = &mut out.totals;
        totals.peak = totals.peak.max(bit_rate(bytes, secs));
        totals.bytes += bytes;
        totals.secs += secs;
        totals.media_bytes += t.samples[range.first..range.end]
            .iter()
            .map(|s| u64::from(s.size))
            .sum::<u64>();
        for (f, frag) in segment.fragments.iter().enumerate() {
            if frag.starts_with_sync {
                let start = if k == 0 && f == 0 { 0 } else { frag.start };
                out.key_frames
                    .push((uri.clone(), (frag.first_sample_end, frag.offset), start));
            }
        }
        out.entries.push(hls::SegmentEntry {
            uri: uri.clone(),
            duration: secs,
            byte_range: None,
        });
        out.objects.push(Object {
            key: format!("{dir}/{uri}"),
            content_type: content_type::MP4,
            cache_control: cache_control::IMMUTABLE,
            body: segment.body,
        });
    }
    out
}

/// The I-frame playlist of a video rendition (`<dir>/iframes.m3u8`): one byte-range
/// entry per key frame, lasting until the next key frame (the last until the end of
/// the rendition), and its variant for the master playlist.
fn build_iframe_playlist(
    p: &Planned<'_>,
    dir: &str,
    key_frames: &[KeyFrame],
    total_secs: f64,
) -> (Object, hls::IFrameVariant) {
    let t = p.track;
    let end = p.segments.last().map(|r| r.start + r.duration).unwrap_or(0);
    let ts = f64::from(t.timescale.max(1));
    let mut entries = Vec::with_capacity(key_frames.len());
    let (mut peak, mut bytes) = (0u64, 0u64);
    for (i, (uri, range, start)) in key_frames.iter().enumerate() {
        let next = key_frames.get(i + 1).map(|k| k.2).unwrap_or(end);
        let secs = (next - start).max(0) as f64 / ts;
        peak = peak.max(bit_rate(range.0, secs));
        bytes += range.0;
        entries.push(hls::SegmentEntry {
            uri: uri.clone(),
            duration: secs,
            byte_range: Some(*range),
        });
    }
    let key = format!("{dir}/iframes.m3u8");
    let object = playlist(
        &key,
        &hls::MediaPlaylistSpec {
            init_uri: Some("init.mp4".into()),
            init_byte_range: None,
            iframes_only: true,
            segments: entries,
        },
    );
    let variant = hls::IFrameVariant {
        uri: key,
        bandwidth: peak,
        average_bandwidth: bit_rate(bytes, total_secs),
        codecs: p.codecs.clone(),
        resolution: Some(displayed_resolution(t)),
        video_range: Some(t.video_range()),
        supplemental_codecs: supplemental_codecs(&t.codec),
    };
    (object, variant)
}

fn playlist(key: &str, spec: &hls::MediaPlaylistSpec) -> Object {
    Object {
        key: key.to_string(),
        content_type: content_type::PLAYLIST,
        cache_control: cache_control::IMMUTABLE,
        body: Body::from_bytes(hls::media_playlist(spec).into_bytes()),
    }
}

const AUDIO_GROUP: &str = "audio";
const SUBTITLE_GROUP: &str = "subs";

/// The master playlist: one variant per video rendition, all sharing one audio group
/// and one subtitle group; an audio-only title has one variant per audio rendition.
fn master_text(renditions: &[Rendition], iframes: &[hls::IFrameVariant]) -> String {
    let of_kind = |kind: TrackKind| -> Vec<&Rendition> {
        renditions.iter().filter(|r| r.kind == kind).collect()
    };
    let (video, audio) = (of_kind(TrackKind::Video), of_kind(TrackKind::Audio));
    let subs = of_kind(TrackKind::Subtitles);
    let mut spec = hls::MasterPlaylistSpec::default();
    let group = (!audio.is_empty() && !video.is_empty()).then(|| AUDIO_GROUP.to_string());
    if group.is_some() {
        spec.audio = audio_entries(&audio);
    }
    let subtitle_group = (!subs.is_empty()).then(|| SUBTITLE_GROUP.to_string());
    spec.subtitles = subtitles::master_entries(&subs, SUBTITLE_GROUP);
    // The group's peak and average: the largest of its renditions (RFC 8216 § 4.3.4.2:
    // BANDWIDTH covers every rendition the variant may be played with).
    let audio_peak = audio.iter().map(|a| a.bandwidth).max().unwrap_or(0);
    let audio_avg = audio.iter().map(|a| a.average_bandwidth).max().unwrap_or(0);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for a in &audio {
        if !audio_codecs.contains(&a.codecs.as_str()) {
            audio_codecs.push(&a.codecs);
        }
    }
    if video.is_empty() {
        for a in &audio {
            spec.variants.push(hls::Variant {
                uri: a.playlist.clone(),
                bandwidth: a.bandwidth,
                average_bandwidth: a.average_bandwidth,
                codecs: a.codecs.clone(),
                resolution: None,
                frame_rate: None,
                video_range: None,
                supplemental_codecs: None,
                audio_group: None,
                subtitle_group: subtitle_group.clone(),
            });
        }
    }
    for v in &video {
        let mut codecs = v.codecs.clone();
        for c in &audio_codecs {
            codecs.push(',');
            codecs.push_str(c);
        }
        spec.variants.push(hls::Variant {
            uri: v.playlist.clone(),
            bandwidth: v.bandwidth + audio_peak,
            average_bandwidth: v.average_bandwidth + audio_avg,
            codecs,
            resolution: v.resolution,
            frame_rate: v.frame_rate,
            video_range: v.video_range,
            supplemental_codecs: v.supplemental_codecs.clone(),
            audio_group: group.clone(),
            subtitle_group: subtitle_group.clone(),
        });
    }
    spec.iframe_variants = iframes.to_vec();
    hls::master_playlist(&spec)
}

/// The audio group's `EXT-X-MEDIA` entries, the first one DEFAULT.
fn audio_entries(audio: &[&Rendition]) -> Vec<hls::AudioRendition> {
    audio
        .iter()
        .enumerate()
        .map(|(i, a)| hls::AudioRendition {
            group_id: AUDIO_GROUP.into(),
            name: audio_name(a, audio),
            language: a.language.as_deref().and_then(language_tag),
            default: i == 0,
            autoselect: true,
            channels: a.channels.unwrap_or(2),
            joc_complexity: a.joc_complexity,
            uri: a.playlist.clone(),
        })
        .collect()
}

/// A human name for an audio rendition: the language's English name where known,
/// made unique within the group (RFC 8216 § 4.3.4.1: NAME must be unique).
fn audio_name(a: &Rendition, all: &[&Rendition]) -> String {
    let lang = a.language.as_deref().unwrap_or("und");
    let base = match lang {
        "eng" => "English",
        "fra" | "fre" => "Français",
        "deu" | "ger" => "Deutsch",
        "spa" => "Español",
        "ita" => "Italiano",
        "por" => "Português",
        "jpn" => "日本語",
        "und" => "Audio",
        other => other,
    };
    let same = all.iter().filter(|r| r.language == a.language).count();
    if same > 1 {
        format!("{base} ({})", a.name)
    } else {
        base.to_string()
    }
}

fn in_track<T>(inputs: &[Input], t: &Track, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::InInput {
        input: format!("{} (track {})", inputs[t.input].source.name(), t.id),
        source: Box::new(e),
    })
}

/// A short hash of (input identities, packager format version, settings): the same
/// input and settings give the same version, hence the same object keys and bytes.
fn version(
    inputs: &[Input],
    movies: &[Movie],
    side_files: &[SubtitleInput],
    settings: &Settings,
) -> String {
    let mut ids: Vec<String> = Vec::with_capacity(inputs.len());
    for (input, movie) in inputs.iter().zip(movies) {
        match input.etag.as_deref() {
            // A rung stands for the upload it was made of (its identity, once): the version
            // is the upload's and the ladder settings', whether the upload is packaged too
            // (kept as the top rung) or not.
            Some(etag) if is_derived(etag) => {
                if let Some((_, from)) = etag.split_once(DERIVED_FROM) {
                    if !ids.iter().any(|id| id == from) {
                        ids.push(from.to_owned());
                    }
                }
            }
            other => ids.push(upload_identity(other, &movie.fingerprint)),
        }
    }
    version_hash(ids.into_iter().chain(side_file_ids(side_files)), settings)
}

/// Between a derived input's name and the identity of the upload it was made of.
const DERIVED_FROM: &str = "|from=";

/// The side files' part of the version: name (it carries the language and tags) and
/// ETag, or a hash of the bytes without one. A title without side files hashes as before.
fn side_file_ids(side_files: &[SubtitleInput]) -> impl Iterator<Item = String> + '_ {
    side_files.iter().map(|f| match &f.etag {
        Some(etag) => format!("sub={}|{etag}", f.name),
        None => format!(
            "sub={}|sha256={}",
            f.name,
            hex::encode(Sha256::digest(&f.bytes))
        ),
    })
}

/// [`version_for_etags`] for a title with side files, given as (name, ETag) in the order
/// [`package_with_subtitles`] gets them.
pub fn version_for_sources<S: AsRef<str>>(
    etags: &[S],
    side_files: &[(String, String)],
    settings: &Settings,
) -> String {
    let ids = etags.iter().map(|e| format!("etag={}", e.as_ref()));
    let subs = side_files
        .iter()
        .map(|(name, etag)| format!("sub={name}|{etag}"));
    version_hash(ids.chain(subs), settings)
}

/// The version [`package`] gives inputs that all have an ETag, in the same order, without
/// reading them: lets a worker see that a title is already published before demuxing.
pub fn version_for_etags<S: AsRef<str>>(etags: &[S], settings: &Settings) -> String {
    version_hash(
        etags.iter().map(|e| format!("etag={}", e.as_ref())),
        settings,
    )
}

/// The ETag of an input `name` made by the transcoding stage ([`Settings::transcode`]) from
/// the upload whose identity is `from`: `etag=<its ETag>`, as the version hashes an input
/// ([`upload_identity`]).
pub fn derived_etag(name: &str, from: &str) -> String {
    format!("derived:{name}{DERIVED_FROM}{from}")
}

/// How the version names an upload: by its ETag, or without one by the fingerprint of its
/// `moov` (`fingerprint`, as the demuxer gives it).
pub fn upload_identity(etag: Option<&str>, fingerprint: &[u8; 32]) -> String {
    match etag {
        Some(etag) => format!("etag={etag}"),
        None => format!("moov={}", hex::encode(fingerprint)),
    }
}

fn is_derived(etag: &str) -> bool {
    etag.starts_with("derived:")
}

/// What goes into a version's hash besides its inputs, in words: the packager's format, and
/// the settings (segment length, the ladder).
pub fn settings_in_version(settings: &Settings) -> (String, String) {
    let mut described = format!("segments of {} s", settings.segment_duration);
    if let Some(transcode) = &settings.transcode {
        described.push_str(&format!(", {transcode}"));
    }
    (FORMAT_VERSION.to_string(), described)
}

fn version_hash(ids: impl Iterator<Item = String>, settings: &Settings) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT_VERSION.as_bytes());
    h.update(format!("|seg={:.6}", settings.segment_duration).as_bytes());
    // Absent for a title without a ladder: its version is what it was before ladders.
    if let Some(transcode) = &settings.transcode {
        h.update(format!("|transcode={transcode}").as_bytes());
    }
    for id in ids {
        h.update(b"|");
        h.update(id.as_bytes());
    }
    hex::encode(&h.finalize()[..6])
}
