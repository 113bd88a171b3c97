//! Media and master playlist text (RFC 8216 § 4), deterministic to the byte.
//!
//! m3u8-rs writes the header tags, `EXT-X-MAP` attributes, `EXT-X-BYTERANGE`
//! values, `EXT-X-MEDIA` and the `EXT-X-(I-FRAME-)STREAM-INF` lines. Two parts are
//! written here instead, because m3u8-rs cannot write them exactly:
//! - `EXTINF`: m3u8-rs holds the duration as `f32` (about 7 significant digits,
//!   so a 1-hour offset already loses the 5th decimal) and its precision is a
//!   process-wide static (`WRITE_OPT_FLOAT_PRECISION`) that any other code in the
//!   process may change; it also puts `EXT-X-BYTERANGE` before `EXTINF`.
//! - `FRAME-RATE`: m3u8-rs prints its `f64` with `Display` (`29.97002997002997`),
//!   not with the 3 decimals RFC 8216 § 4.3.4.2 shows; it is passed as the only
//!   entry of `other_attributes`, whose `HashMap` order therefore cannot vary.

use std::collections::HashMap;
use std::io::Write;

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ByteRange, Map, MasterPlaylist, MediaPlaylist,
    MediaPlaylistType, QuotedOrUnquoted, Resolution, Start, VariantStream,
};

use super::{MasterPlaylistSpec, MediaPlaylistSpec, SegmentEntry, VideoRange};

/// `EXT-X-VERSION` of the master playlist: the highest any media playlist of
/// ours needs (`EXT-X-MAP` in a non-I-frame playlist, RFC 8216 § 7), so a client
/// that accepts the master accepts every media playlist it names.
const MASTER_VERSION: usize = 6;

/// Decimal places of `EXTINF` (RFC 8216 § 4.3.2.1 allows decimal-floating-point).
const EXTINF_DECIMALS: usize = 5;

/// The media playlist text for `spec`: a VOD playlist ending in `EXT-X-ENDLIST`.
///
/// `EXT-X-TARGETDURATION` is the largest `EXTINF`, as written, rounded to the
/// nearest integer (RFC 8216 § 4.3.3.1), and at least 1. `EXT-X-VERSION` is the
/// lowest that the features used allow (RFC 8216 § 7).
pub fn media_playlist(spec: &MediaPlaylistSpec) -> String {
    render_media(spec, None, None)
}

/// The media playlist of a title being published progressively: `EXT-X-PLAYLIST-TYPE:EVENT`
/// with its first `upto` segments, `EXT-X-ENDLIST` once `ended`. Every version of it is the
/// one before with lines appended, which is all RFC 8216 § 6.2.1 allows an EVENT playlist:
/// `EXT-X-TARGETDURATION` is the same from the first version on (`target`, when the whole
/// is planned but not yet made; else the whole spec's), and the type never changes.
/// `EXT-X-START:TIME-OFFSET=0` has players start at the beginning, not near the end as they
/// would in a playlist without `EXT-X-ENDLIST` (§ 6.3.3).
pub fn event_playlist(
    spec: &MediaPlaylistSpec,
    upto: usize,
    ended: bool,
    target: Option<u64>,
) -> String {
    render_media(spec, Some((upto, ended)), target)
}

/// `EXT-X-TARGETDURATION` of `spec`: its largest `EXTINF`, as written, rounded to the
/// nearest integer (RFC 8216 § 4.3.3.1), and at least 1.
pub fn target_duration(spec: &MediaPlaylistSpec) -> u64 {
    let extinfs: Vec<String> = spec.segments.iter().map(extinf_value).collect();
    target_of(&extinfs)
}

fn target_of(extinfs: &[String]) -> u64 {
    extinfs
        .iter()
        .map(|v| v.parse::<f64>().map_or(0, |d| d.round() as u64))
        .max()
        .unwrap_or(0)
        .max(1)
}

/// `event`: `None` for VOD; the segments listed and whether it has ended, for EVENT.
/// `target`: the target duration, when not the spec's.
fn render_media(
    spec: &MediaPlaylistSpec,
    event: Option<(usize, bool)>,
    target: Option<u64>,
) -> String {
    let extinfs: Vec<String> = spec.segments.iter().map(extinf_value).collect();
    let target_duration = target.unwrap_or_else(|| target_of(&extinfs));
    let (listed, ended) = match event {
        None => (spec.segments.len(), true),
        Some((upto, ended)) => (upto.min(spec.segments.len()), ended),
    };

    let header = MediaPlaylist {
        version: Some(media_version(spec)),
        target_duration,
        playlist_type: Some(if event.is_some() {
            MediaPlaylistType::Event
        } else {
            MediaPlaylistType::Vod
        }),
        i_frames_only: spec.iframes_only,
        independent_segments: true,
        start: event.map(|_| Start {
            time_offset: 0.0,
            ..Start::default()
        }),
        // Segments and ENDLIST are written below; see the module comment.
        segments: Vec::new(),
        end_list: false,
        ..MediaPlaylist::default()
    };
    let mut out = Vec::new();
    // Writes into a Vec cannot fail: the io::Results below are always Ok.
    let _ = header.write_to(&mut out);
    if let Some(uri) = &spec.init_uri {
        let map = Map {
            uri: quoted_value(uri),
            byte_range: spec.init_byte_range.map(byte_range),
            other_attributes: HashMap::new(),
        };
        let _ = write!(out, "#EXT-X-MAP:");
        let _ = map.write_attributes_to(&mut out);
        let _ = writeln!(out);
    }
    for (segment, extinf) in spec.segments.iter().zip(&extinfs).take(listed) {
        let _ = writeln!(out, "#EXTINF:{extinf},");
        if let Some(range) = segment.byte_range {
            let _ = write!(out, "#EXT-X-BYTERANGE:");
            let _ = byte_range(range).write_value_to(&mut out);
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "{}", uri_line(&segment.uri));
    }
    if ended {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    // Every piece written is a Rust string, so this is always valid UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

/// The master (multivariant) playlist text for `spec`: audio renditions, then
/// variants, then I-frame variants, each in the order given.
pub fn master_playlist(spec: &MasterPlaylistSpec) -> String {
    let mut alternatives: Vec<AlternativeMedia> = spec
        .audio
        .iter()
        .map(|a| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(quoted_value(&a.uri)),
            group_id: quoted_value(&a.group_id),
            language: a.language.as_deref().map(quoted_value),
            name: quoted_value(&a.name),
            // m3u8-rs writes DEFAULT and AUTOSELECT only when YES; absence means
            // NO (RFC 8216 § 4.3.4.1).
            default: a.default,
            autoselect: a.autoselect,
            channels: channels_value(a),
            ..AlternativeMedia::default()
        })
        .collect();
    alternatives.extend(spec.subtitles.iter().map(|s| AlternativeMedia {
        media_type: AlternativeMediaType::Subtitles,
        uri: Some(quoted_value(&s.uri)),
        group_id: quoted_value(&s.group_id),
        language: s.language.as_deref().map(quoted_value),
        name: quoted_value(&s.name),
        default: s.default,
        // RFC 8216 § 4.3.4.1: AUTOSELECT must be YES when DEFAULT is.
        autoselect: s.autoselect || s.default,
        forced: s.forced,
        characteristics: s.characteristics.as_deref().map(quoted_value),
        ..AlternativeMedia::default()
    }));

    let mut variants: Vec<VariantStream> = spec
        .variants
        .iter()
        .map(|v| VariantStream {
            is_i_frame: false,
            uri: uri_line(&v.uri),
            bandwidth: v.bandwidth,
            average_bandwidth: Some(v.average_bandwidth),
            codecs: Some(quoted_value(&v.codecs)),
            resolution: v.resolution.map(resolution),
            audio: v.audio_group.as_deref().map(quoted_value),
            subtitles: v.subtitle_group.as_deref().map(quoted_value),
            other_attributes: video_attributes(
                v.frame_rate,
                v.video_range,
                v.supplemental_codecs.as_deref(),
            ),
            ..VariantStream::default()
        })
        .collect();
    variants.extend(spec.iframe_variants.iter().map(|v| VariantStream {
        is_i_frame: true,
        uri: quoted_value(&v.uri),
        bandwidth: v.bandwidth,
        average_bandwidth: Some(v.average_bandwidth),
        codecs: Some(quoted_value(&v.codecs)),
        resolution: v.resolution.map(resolution),
        other_attributes: video_attributes(None, v.video_range, v.supplemental_codecs.as_deref()),
        ..VariantStream::default()
    }));

    let master = MasterPlaylist {
        version: Some(MASTER_VERSION),
        independent_segments: true,
        alternatives,
        variants,
        ..MasterPlaylist::default()
    };
    let mut out = Vec::new();
    // Writes into a Vec cannot fail.
    let _ = master.write_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The lowest `EXT-X-VERSION` for the features `spec` uses (RFC 8216 § 7):
/// decimal `EXTINF` needs 3; `EXT-X-BYTERANGE` and `EXT-X-I-FRAMES-ONLY` need 4;
/// `EXT-X-MAP` needs 5 in an I-frame playlist and 6 in any other.
fn media_version(spec: &MediaPlaylistSpec) -> usize {
    let mut version = 3;
    let byte_ranges =
        spec.init_byte_range.is_some() || spec.segments.iter().any(|s| s.byte_range.is_some());
    if byte_ranges || spec.iframes_only {
        version = 4;
    }
    if spec.init_uri.is_some() {
        version = version.max(if spec.iframes_only { 5 } else { 6 });
    }
    version
}

/// The `EXTINF` duration text: 5 decimals, from the `f64` (Rust's `{:.N}` is exact
/// decimal rounding, so the same input always gives the same text). A negative
/// or non-finite duration is written as 0, which the checker then reports.
fn extinf_value(segment: &SegmentEntry) -> String {
    let d = segment.duration;
    let d = if d.is_finite() && d > 0.0 { d } else { 0.0 };
    format!("{d:.EXTINF_DECIMALS$}")
}

fn byte_range((length, offset): (u64, u64)) -> ByteRange {
    ByteRange {
        length,
        offset: Some(offset),
    }
}

/// The `CHANNELS` value: the JOC complexity index for Dolby Atmos (`16/JOC`), else the
/// channel count; an unknown (0) count is left out rather than written as "0".
fn channels_value(a: &super::AudioRendition) -> Option<String> {
    match a.joc_complexity {
        Some(index) => Some(format!("{index}/JOC")),
        None => (a.channels > 0).then(|| a.channels.to_string()),
    }
}

/// `FRAME-RATE` (full precision, which m3u8-rs's own field rounds away), `VIDEO-RANGE`
/// when not SDR and `SUPPLEMENTAL-CODECS` when given. m3u8-rs writes extra attributes from
/// a `HashMap`, whose order changes from run to run, so all of them travel as one entry
/// (the first name, the rest inside its value): the output stays byte-identical.
fn video_attributes(
    frame_rate: Option<f64>,
    range: Option<VideoRange>,
    supplemental_codecs: Option<&str>,
) -> Option<HashMap<String, QuotedOrUnquoted>> {
    let frame_rate = frame_rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| format!("{r:.3}"));
    let range = range
        .filter(|r| *r != VideoRange::Sdr)
        .map(|r| r.as_str().to_string());
    let supplemental = supplemental_codecs.map(|c| format!("\"{}\"", quoted_value(c)));
    let mut attributes = [
        ("FRAME-RATE", frame_rate),
        ("VIDEO-RANGE", range),
        ("SUPPLEMENTAL-CODECS", supplemental),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)));
    let (name, mut value) = attributes.next()?;
    for (other, v) in attributes {
        value.push_str(&format!(",{other}={v}"));
    }
    Some(HashMap::from([(
        name.to_string(),
        QuotedOrUnquoted::Unquoted(value),
    )]))
}

fn resolution((width, height): (u16, u16)) -> Resolution {
    Resolution {
        width: width.into(),
        height: height.into(),
    }
}

/// A quoted-string attribute value must not hold a double quote, CR or LF
/// (RFC 8216 § 4.2), and m3u8-rs writes values unescaped: those characters are
/// dropped rather than let them end the attribute or the line early.
fn quoted_value(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n'))
        .collect()
}

/// A URI line: CR and LF would start a new line, a leading `#` would turn it
/// into a comment (RFC 8216 § 4.1), and `"` cannot appear in a URI (RFC 3986
/// § 2): all are percent-encoded, which keeps the URI's meaning.
fn uri_line(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    for (i, c) in uri.chars().enumerate() {
        match c {
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '"' => out.push_str("%22"),
            '#' if i == 0 => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{AudioRendition, IFrameVariant, SubtitleRendition, Variant};
    use super::*;

    fn seg(uri: &str, duration: f64) -> SegmentEntry {
        SegmentEntry {
            uri: uri.to_string(),
            duration,
            byte_range: None,
        }
    }

    #[test]
    fn fmp4_media_playlist() {
        let spec = MediaPlaylistSpec {
            init_uri: Some("init.mp4".into()),
            init_byte_range: None,
            iframes_only: false,
            segments: vec![
                seg("seg00000.m4s", 6.006),
                seg("seg00001.m4s", 6.506),
                seg("seg00002.m4s", 2.4999949),
            ],
        };
        assert_eq!(
            media_playlist(&spec),
            "#EXTM3U\n\
             #EXT-X-VERSION:6\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-TARGETDURATION:7\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:6.00600,\n\
             seg00000.m4s\n\
             #EXTINF:6.50600,\n\
             seg00001.m4s\n\
             #EXTINF:2.49999,\n\
             seg00002.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn an_event_playlist_only_grows_and_ends_with_the_vod_one_s_segments() {
        let spec = MediaPlaylistSpec {
            init_uri: Some("init.mp4".into()),
            init_byte_range: None,
            iframes_only: false,
            segments: vec![
                seg("seg_00001.m4s", 4.0),
                seg("seg_00002.m4s", 6.506),
                seg("seg_00003.m4s", 1.5),
            ],
        };
        let first = event_playlist(&spec, 1, false, None);
        assert_eq!(
            first,
            "#EXTM3U\n\
             #EXT-X-VERSION:6\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-TARGETDURATION:7\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-START:TIME-OFFSET=0\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:4.00000,\n\
             seg_00001.m4s\n",
            "the target is the whole plan's from the first version"
        );
        let versions: Vec<String> = [(2, false), (3, false), (3, true)]
            .iter()
            .map(|&(n, ended)| event_playlist(&spec, n, ended, None))
            .collect();
        let mut before = first;
        for v in &versions {
            assert!(
                v.starts_with(&before),
                "only appended to:\n{before}---\n{v}"
            );
            before.clone_from(v);
        }
        let last = versions.last().unwrap();
        assert!(last.ends_with("seg_00003.m4s\n#EXT-X-ENDLIST\n"), "{last}");
        let vod = media_playlist(&spec);
        let segments = |text: &str| -> Vec<String> {
            text.lines()
                .skip_while(|l| !l.starts_with("#EXT-X-MAP"))
                .map(String::from)
                .collect()
        };
        assert_eq!(segments(last), segments(&vod));
    }

    #[test]
    fn target_duration_rounds_the_written_value() {
        // 6.4999996 is written as 6.50000, which a client rounds to 7
        // (RFC 8216 § 4.3.3.1), so the target must be 7, not round(6.4999996) = 6.
        let spec = MediaPlaylistSpec {
            init_uri: None,
            init_byte_range: None,
            iframes_only: false,
            segments: vec![seg("a.ts", 6.4999996), seg("b.ts", 0.2)],
        };
        let text = media_playlist(&spec);
        assert!(text.contains("#EXT-X-TARGETDURATION:7\n"), "{text}");
        assert!(text.contains("#EXTINF:6.50000,\n"), "{text}");
        // No EXT-X-MAP and no byte ranges: decimal EXTINF alone needs version 3.
        assert!(text.contains("#EXT-X-VERSION:3\n"), "{text}");
    }

    #[test]
    fn short_playlist_has_target_duration_one() {
        let spec = MediaPlaylistSpec {
            init_uri: None,
            init_byte_range: None,
            iframes_only: false,
            segments: vec![seg("a.ts", 0.4)],
        };
        assert!(media_playlist(&spec).contains("#EXT-X-TARGETDURATION:1\n"));
    }

    #[test]
    fn long_extinf_keeps_five_exact_decimals() {
        let spec = MediaPlaylistSpec {
            init_uri: None,
            init_byte_range: None,
            iframes_only: false,
            segments: vec![seg("a.ts", 3599.12345)],
        };
        // As f32 this would be 3599.1235 (m3u8-rs's EXTINF type).
        assert!(media_playlist(&spec).contains("#EXTINF:3599.12345,\n"));
    }

    #[test]
    fn iframe_playlist_with_byte_ranges() {
        let range = |len, off| SegmentEntry {
            uri: "video.mp4".into(),
            duration: 2.002,
            byte_range: Some((len, off)),
        };
        let spec = MediaPlaylistSpec {
            init_uri: Some("video.mp4".into()),
            init_byte_range: Some((812, 0)),
            iframes_only: true,
            segments: vec![range(20304, 812), range(18111, 210433)],
        };
        assert_eq!(
            media_playlist(&spec),
            "#EXTM3U\n\
             #EXT-X-VERSION:5\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-TARGETDURATION:2\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-I-FRAMES-ONLY\n\
             #EXT-X-MAP:URI=\"video.mp4\",BYTERANGE=\"812@0\"\n\
             #EXTINF:2.00200,\n\
             #EXT-X-BYTERANGE:20304@812\n\
             video.mp4\n\
             #EXTINF:2.00200,\n\
             #EXT-X-BYTERANGE:18111@210433\n\
             video.mp4\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn media_versions_follow_rfc8216_section_7() {
        let mut spec = MediaPlaylistSpec {
            init_uri: None,
            init_byte_range: None,
            iframes_only: false,
            segments: vec![seg("a.ts", 1.0)],
        };
        assert_eq!(media_version(&spec), 3);
        spec.segments[0].byte_range = Some((10, 0));
        assert_eq!(media_version(&spec), 4);
        spec.segments[0].byte_range = None;
        spec.iframes_only = true;
        assert_eq!(media_version(&spec), 4);
        spec.init_uri = Some("init.mp4".into());
        assert_eq!(media_version(&spec), 5);
        spec.iframes_only = false;
        assert_eq!(media_version(&spec), 6);
    }

    fn ladder() -> MasterPlaylistSpec {
        MasterPlaylistSpec {
            audio: vec![
                AudioRendition {
                    group_id: "aac".into(),
                    name: "English".into(),
                    language: Some("en".into()),
                    default: true,
                    autoselect: true,
                    channels: 2,
                    joc_complexity: None,
                    uri: "v/1a2b/audio_en/index.m3u8".into(),
                },
                AudioRendition {
                    group_id: "aac".into(),
                    name: "Commentary".into(),
                    language: None,
                    default: false,
                    autoselect: false,
                    channels: 6,
                    joc_complexity: None,
                    uri: "v/1a2b/audio_c/index.m3u8".into(),
                },
            ],
            subtitles: Vec::new(),
            variants: vec![
                Variant {
                    uri: "v/1a2b/720p/index.m3u8".into(),
                    bandwidth: 3_100_000,
                    average_bandwidth: 2_400_000,
                    codecs: "avc1.64001f,mp4a.40.2".into(),
                    resolution: Some((1280, 720)),
                    frame_rate: Some(30_000.0 / 1001.0),
                    video_range: Some(VideoRange::Pq),
                    supplemental_codecs: None,
                    audio_group: Some("aac".into()),
                    subtitle_group: None,
                },
                Variant {
                    uri: "v/1a2b/360p/index.m3u8".into(),
                    bandwidth: 900_000,
                    average_bandwidth: 700_000,
                    codecs: "avc1.42c01e,mp4a.40.2".into(),
                    resolution: Some((640, 360)),
                    frame_rate: Some(25.0),
                    // SDR is what an absent VIDEO-RANGE means: not written.
                    video_range: Some(VideoRange::Sdr),
                    supplemental_codecs: None,
                    audio_group: Some("aac".into()),
                    subtitle_group: None,
                },
            ],
            iframe_variants: vec![IFrameVariant {
                uri: "v/1a2b/720p/iframes.m3u8".into(),
                bandwidth: 310_000,
                average_bandwidth: 90_000,
                codecs: "avc1.64001f".into(),
                resolution: Some((1280, 720)),
                video_range: Some(VideoRange::Pq),
                supplemental_codecs: None,
            }],
        }
    }

    #[test]
    fn master_playlist_whole() {
        assert_eq!(
            master_playlist(&ladder()),
            "#EXTM3U\n\
             #EXT-X-VERSION:6\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,URI=\"v/1a2b/audio_en/index.m3u8\",GROUP-ID=\"aac\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,URI=\"v/1a2b/audio_c/index.m3u8\",GROUP-ID=\"aac\",NAME=\"Commentary\",CHANNELS=\"6\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2400000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,VIDEO-RANGE=PQ,AUDIO=\"aac\"\n\
             v/1a2b/720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO=\"aac\"\n\
             v/1a2b/360p/index.m3u8\n\
             #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=310000,AVERAGE-BANDWIDTH=90000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,VIDEO-RANGE=PQ,URI=\"v/1a2b/720p/iframes.m3u8\"\n"
        );
    }

    #[test]
    fn subtitle_renditions_and_group() {
        let mut spec = ladder();
        spec.subtitles = vec![
            SubtitleRendition {
                group_id: "subs".into(),
                name: "English".into(),
                language: Some("en".into()),
                default: false,
                autoselect: true,
                forced: false,
                characteristics: Some("public.accessibility.transcribes-spoken-dialog".into()),
                uri: "v/1a2b/subs_en/index.m3u8".into(),
            },
            SubtitleRendition {
                group_id: "subs".into(),
                name: "Français (forced)".into(),
                language: Some("fr".into()),
                default: true,
                autoselect: false,
                forced: true,
                characteristics: None,
                uri: "v/1a2b/subs_fr/index.m3u8".into(),
            },
        ];
        spec.variants[1].subtitle_group = Some("subs".into());
        let text = master_playlist(&spec);
        assert!(text.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"v/1a2b/subs_en/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",AUTOSELECT=YES,CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog\"\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"v/1a2b/subs_fr/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"fr\",NAME=\"Français (forced)\",DEFAULT=YES,AUTOSELECT=YES,FORCED=YES\n"
        ), "{text}");
        assert!(
            text.contains(",AUDIO=\"aac\",SUBTITLES=\"subs\"\nv/1a2b/360p/index.m3u8\n"),
            "{text}"
        );
    }

    #[test]
    fn dolby_vision_and_atmos_attributes() {
        let mut spec = ladder();
        spec.audio[1].joc_complexity = Some(16);
        spec.variants[0].supplemental_codecs = Some("dvh1.08.07/db1p".into());
        spec.iframe_variants[0].supplemental_codecs = Some("dvh1.08.07/db1p".into());
        let text = master_playlist(&spec);
        assert!(
            text.contains(",NAME=\"Commentary\",CHANNELS=\"16/JOC\"\n"),
            "{text}"
        );
        assert!(
            text.contains(
                ",FRAME-RATE=29.970,VIDEO-RANGE=PQ,SUPPLEMENTAL-CODECS=\"dvh1.08.07/db1p\",AUDIO="
            ),
            "{text}"
        );
        assert!(
            text.contains(",VIDEO-RANGE=PQ,SUPPLEMENTAL-CODECS=\"dvh1.08.07/db1p\",URI="),
            "{text}"
        );
        for _ in 0..20 {
            assert_eq!(master_playlist(&spec), text);
        }
    }

    #[test]
    fn master_playlist_is_byte_identical_across_runs() {
        let first = master_playlist(&ladder());
        for _ in 0..50 {
            assert_eq!(master_playlist(&ladder()), first);
        }
    }

    #[test]
    fn unsafe_characters_cannot_break_lines_or_attributes() {
        let mut spec = ladder();
        spec.audio[0].name = "Eng\"lish\nX".into();
        spec.variants[0].uri = "#x\r\n#EXT-X-ENDLIST\"".into();
        let text = master_playlist(&spec);
        assert!(text.contains(",NAME=\"EnglishX\","), "{text}");
        assert!(text.contains("\n%23x%0D%0A#EXT-X-ENDLIST%22\n"), "{text}");
        assert_eq!(
            text.lines().count(),
            master_playlist(&ladder()).lines().count()
        );
    }
}
