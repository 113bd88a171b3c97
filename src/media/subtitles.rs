//! A title's subtitle renditions (DESIGN.md "Media rules"): `tx3g` tracks of its inputs
//! and SRT or WebVTT side files, each packaged as segmented WebVTT cut at the video's
//! segment boundaries (RFC 8216 § 3.5), with a media playlist per track.
//!
//! Subtitles never cost the title its picture and sound: a track or side file that
//! cannot be read is left out with a warning.

use crate::media::hls::{self, codecs::language_tag};
use crate::media::model::{Movie, Track, TrackKind};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::rendition::{bit_rate, unique_name, GrowingPlaylist, Input, Rendition};
use crate::media::source::{read_vec, Source};
use crate::media::text::{
    self, segment_webvtt, srt, tx3g, webvtt, SideFileName, SubtitleFormat, Subtitles,
};

/// A subtitle side file of a title (`ep1.en.srt` beside `ep1.mp4`), already read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtitleInput {
    /// The file's name or key: its language, `forced` and `sdh`/`cc` tags are read from it.
    pub name: String,
    pub bytes: Vec<u8>,
    /// The store's ETag: identifies the content for the version hash.
    pub etag: Option<String>,
}

/// Apple's accessibility characteristics for subtitles written for the deaf and hard of
/// hearing (HLS authoring specification; RFC 8216 § 4.3.4.1 `CHARACTERISTICS`).
const SDH_CHARACTERISTICS: &str =
    "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound";

/// One subtitle track to package, whatever it came from.
pub(crate) struct SubtitleTrack {
    /// (input index, track_ID) of a `tx3g` track; `None` for a side file.
    origin: Option<(usize, u32)>,
    /// BCP 47 tag, or `und`.
    language: String,
    forced: bool,
    sdh: bool,
    text: Subtitles,
}

impl SubtitleTrack {
    pub(crate) fn origin(&self) -> Option<(usize, u32)> {
        self.origin
    }
}

/// Every subtitle track of the title: the inputs' `tx3g` tracks in input order, then the
/// side files in the order given. What cannot be read becomes a warning.
pub(crate) fn collect(
    inputs: &[Input],
    movies: &[Movie],
    side_files: &[SubtitleInput],
    warnings: &mut Vec<String>,
) -> Vec<SubtitleTrack> {
    let mut out = Vec::new();
    for (i, (input, movie)) in inputs.iter().zip(movies).enumerate() {
        for t in &movie.text_tracks {
            match read_tx3g(input.source.as_ref(), t) {
                Ok(text) => out.push(SubtitleTrack {
                    origin: Some((i, t.id)),
                    language: language_tag(&t.language).unwrap_or_else(|| "und".into()),
                    forced: false,
                    sdh: false,
                    text,
                }),
                Err(e) => warnings.push(format!(
                    "{}: subtitle track {} left out: {e}",
                    input.source.name(),
                    t.id
                )),
            }
        }
    }
    for f in side_files {
        match read_side_file(f) {
            Ok(track) => {
                warnings.extend(
                    track
                        .text
                        .warnings
                        .iter()
                        .map(|w| format!("{}: {w}", f.name)),
                );
                out.push(track);
            }
            Err(e) => warnings.push(format!("{}: subtitles left out: {e}", f.name)),
        }
    }
    out
}

fn read_side_file(f: &SubtitleInput) -> Result<SubtitleTrack, String> {
    let name = SideFileName::parse(&f.name)
        .ok_or_else(|| "not a subtitle file name (*.srt or *.vtt)".to_string())?;
    let text = match name.format {
        SubtitleFormat::Srt => srt::parse(&f.bytes),
        SubtitleFormat::WebVtt => webvtt::parse(&f.bytes),
    }
    .map_err(|e| e.to_string())?;
    Ok(SubtitleTrack {
        origin: None,
        language: name.language,
        forced: name.forced,
        sdh: name.sdh,
        text,
    })
}

/// The cues of a `tx3g` track: each non-empty sample is a cue lasting the sample's
/// duration, at its presentation time (edit list applied). Samples are read in runs of
/// contiguous bytes (a chunk), and no more than [`text::MAX_FILE_BYTES`] in all.
fn read_tx3g(src: &dyn Source, t: &Track) -> Result<Subtitles, String> {
    if t.samples.len() > text::MAX_CUES {
        return Err(format!("more than {} samples", text::MAX_CUES));
    }
    let total: u64 = t.samples.iter().map(|s| u64::from(s.size)).sum();
    if total > text::MAX_FILE_BYTES as u64 {
        return Err(format!(
            "{total} bytes of text is over the {}-byte limit",
            text::MAX_FILE_BYTES
        ));
    }
    let mut cues = Vec::new();
    let mut i = 0;
    while i < t.samples.len() {
        let first = t.samples[i];
        let mut end = i + 1;
        let mut run_end = first.offset + u64::from(first.size);
        while end < t.samples.len() && t.samples[end].offset == run_end {
            run_end += u64::from(t.samples[end].size);
            end += 1;
        }
        let bytes =
            read_vec(src, first.offset, run_end - first.offset).map_err(|e| e.to_string())?;
        let mut at = 0usize;
        for s in &t.samples[i..end] {
            let sample = &bytes[at..at + s.size as usize];
            at += s.size as usize;
            if let Some(text) = tx3g::sample_text(sample).map_err(|e| e.to_string())? {
                let start_ms = ticks_to_ms(t.pts(s), t.timescale);
                let end_ms =
                    ticks_to_ms(t.pts(s).saturating_add(i64::from(s.duration)), t.timescale);
                cues.push(text::Cue {
                    start_ms,
                    end_ms,
                    id: None,
                    settings: None,
                    text,
                });
            }
        }
        i = end;
    }
    cues.sort_by_key(|c| c.start_ms);
    Ok(Subtitles {
        cues,
        ..Subtitles::default()
    })
}

/// Media time to milliseconds, rounded down; times before 0 are 0.
fn ticks_to_ms(ticks: i64, timescale: u32) -> u64 {
    let ms = i128::from(ticks) * 1000 / i128::from(timescale.max(1));
    u64::try_from(ms.max(0)).unwrap_or(u64::MAX)
}

/// A segment of the reference rendition: start and end in milliseconds, and the
/// duration in seconds its media playlist gives it (the subtitle playlist repeats it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
    pub secs: f64,
}

/// What the subtitle renditions add to the title.
#[derive(Default)]
pub(crate) struct BuiltSubtitles {
    pub media: Vec<Object>,
    pub playlists: Vec<Object>,
    pub renditions: Vec<Rendition>,
    pub growing: Vec<GrowingPlaylist>,
}

/// WebVTT segments and a media playlist per track under `<prefix>/subs_<lang>/`.
pub(crate) fn build(
    tracks: &[SubtitleTrack],
    spans: &[Span],
    prefix: &str,
    names: &mut Vec<String>,
) -> BuiltSubtitles {
    let mut out = BuiltSubtitles::default();
    let ms_spans: Vec<(u64, u64)> = spans.iter().map(|s| (s.start_ms, s.end_ms)).collect();
    for track in tracks {
        let name = unique_name(names, format!("subs_{}", track.language));
        let dir = format!("{prefix}/{name}");
        let segments = segment_webvtt(&track.text.cues, &track.text.preamble, &ms_spans);
        let (mut peak, mut bytes, mut entries) = (0u64, 0u64, Vec::new());
        for (k, (segment, span)) in segments.into_iter().zip(spans).enumerate() {
            let uri = format!("seg_{:05}.vtt", k + 1);
            let len = segment.text.len() as u64;
            peak = peak.max(bit_rate(len, span.secs));
            bytes += len;
            entries.push(hls::SegmentEntry {
                uri: uri.clone(),
                duration: span.secs,
                byte_range: None,
            });
            out.media.push(Object {
                key: format!("{dir}/{uri}"),
                content_type: content_type::WEBVTT,
                cache_control: cache_control::IMMUTABLE,
                body: Body::from_bytes(segment.text.into_bytes()),
            });
        }
        let secs: f64 = spans.iter().map(|s| s.secs).sum();
        let playlist = format!("{dir}/index.m3u8");
        let spec = hls::MediaPlaylistSpec {
            init_uri: None,
            init_byte_range: None,
            iframes_only: false,
            segments: entries,
        };
        out.playlists.push(Object {
            key: playlist.clone(),
            content_type: content_type::PLAYLIST,
            cache_control: cache_control::IMMUTABLE,
            body: Body::from_bytes(hls::media_playlist(&spec).into_bytes()),
        });
        out.growing.push(GrowingPlaylist::new(&dir, spec));
        out.renditions.push(describe(
            track,
            name,
            playlist,
            (peak, bytes, secs, spans.len()),
        ));
    }
    out
}

fn describe(
    track: &SubtitleTrack,
    name: String,
    playlist: String,
    (peak, bytes, secs, segment_count): (u64, u64, f64, usize),
) -> Rendition {
    Rendition {
        name,
        kind: TrackKind::Subtitles,
        // The ISO/IEC 14496-30 name of WebVTT; never written into a variant's CODECS.
        codecs: "wvtt".into(),
        bandwidth: peak,
        average_bandwidth: bit_rate(bytes, secs),
        resolution: None,
        frame_rate: None,
        video_range: None,
        language: Some(track.language.clone()),
        channels: None,
        joc_complexity: None,
        supplemental_codecs: None,
        duration: secs,
        segment_count,
        playlist,
        forced: track.forced,
        characteristics: track.sdh.then(|| SDH_CHARACTERISTICS.to_string()),
    }
}

/// The master playlist's `EXT-X-MEDIA TYPE=SUBTITLES` entries of `group`. Every track is
/// AUTOSELECT (the player may pick it from the viewer's language, RFC 8216 § 4.3.4.1.1).
/// DEFAULT=YES goes to the first forced track, if any: forced subtitles (signs, foreign
/// dialogue) are meant to show when the viewer chose none; other subtitles stay off until
/// chosen.
pub(crate) fn master_entries(
    renditions: &[&Rendition],
    group: &str,
) -> Vec<hls::SubtitleRendition> {
    let default = renditions.iter().position(|r| r.forced);
    let mut names: Vec<String> = Vec::new();
    renditions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lang = r.language.as_deref().unwrap_or("und");
            let mut name = display_name(lang, r.forced, r.characteristics.is_some());
            let base = name.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{base} {n}");
                n += 1;
            }
            names.push(name.clone());
            hls::SubtitleRendition {
                group_id: group.to_string(),
                name,
                language: (lang != "und").then(|| lang.to_string()),
                default: default == Some(i),
                autoselect: true,
                forced: r.forced,
                characteristics: r.characteristics.clone(),
                uri: r.playlist.clone(),
            }
        })
        .collect()
}

/// A human name for a subtitle rendition: the language's own name where known.
fn display_name(lang: &str, forced: bool, sdh: bool) -> String {
    let primary = lang.split('-').next().unwrap_or(lang);
    let base = match (primary, lang) {
        (_, "pt-BR") => "Português (Brasil)",
        ("en", _) => "English",
        ("fr", _) => "Français",
        ("de", _) => "Deutsch",
        ("es", _) => "Español",
        ("it", _) => "Italiano",
        ("pt", _) => "Português",
        ("nl", _) => "Nederlands",
        ("ja", _) => "日本語",
        ("und", _) => "Subtitles",
        _ => lang,
    };
    let mut name = base.to_string();
    if forced {
        name.push_str(" (forced)");
    }
    if sdh {
        name.push_str(" (SDH)");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_language_forced_and_sdh() {
        assert_eq!(display_name("en", false, false), "English");
        assert_eq!(
            display_name("pt-BR", true, false),
            "Português (Brasil) (forced)"
        );
        assert_eq!(display_name("sv", false, true), "sv (SDH)");
        assert_eq!(display_name("und", false, false), "Subtitles");
    }

    #[test]
    fn tick_conversion_clamps_and_rounds_down() {
        assert_eq!(ticks_to_ms(-5, 1000), 0);
        assert_eq!(ticks_to_ms(1999, 1000), 1999);
        assert_eq!(ticks_to_ms(90_001, 90_000), 1000);
        assert_eq!(ticks_to_ms(i64::MAX, 1), u64::MAX);
    }
}
