//! A playlist rule checker for tests: reads playlist text with m3u8-rs (a reader
//! independent of our writer) and reports every rule of RFC 8216 and
//! DESIGN.md "Segmenting rules" that the text breaks, not just the first.
//!
//! m3u8-rs is lenient in ways that would hide faults, so the checker also looks
//! at the raw lines where m3u8-rs loses information:
//! - it stops at the first line it cannot read and returns what it had, so any
//!   unread rest is reported;
//! - a tag whose attributes it rejects (say `EXT-X-STREAM-INF` without
//!   `BANDWIDTH`) becomes an "unknown" tag, and a malformed `EXTINF` a comment;
//! - `EXTINF` durations are `f32`, so the exact decimal text is read from the
//!   lines for the `EXT-X-TARGETDURATION` rounding rule and the durations;
//! - a URI line that no `EXT-X-STREAM-INF` precedes silently replaces the URI
//!   of the previous variant.
//!
//! Nothing here panics on any input text.

use std::collections::BTreeMap;

use m3u8_rs::{AlternativeMediaType, MasterPlaylist, MediaPlaylist, MediaPlaylistType};

/// What a media playlist that passed the rules holds.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSummary {
    /// `EXT-X-VERSION`, 1 when absent (RFC 8216 § 4.3.1.2).
    pub version: usize,
    pub target_duration: u64,
    pub iframes_only: bool,
    /// Every distinct `EXT-X-MAP` URI, in playlist order.
    pub map_uris: Vec<String>,
    /// `BYTERANGE` of the first `EXT-X-MAP` as (length, offset).
    pub map_byte_range: Option<(u64, u64)>,
    /// One entry per media segment, in order.
    pub segment_uris: Vec<String>,
    /// Exact `EXTINF` values, read from the text.
    pub segment_durations: Vec<f64>,
    /// `EXT-X-BYTERANGE` as (length, offset), offsets resolved (RFC 8216 § 4.3.2.2).
    pub segment_byte_ranges: Vec<Option<(u64, u64)>>,
    pub total_duration: f64,
}

impl MediaSummary {
    /// Every distinct URI the playlist names (maps first, then segments), for
    /// tests that check each one exists.
    pub fn uris(&self) -> Vec<&str> {
        distinct(self.map_uris.iter().chain(&self.segment_uris))
    }
}

/// What a master playlist that passed the rules holds.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterSummary {
    /// `EXT-X-VERSION`, 1 when absent.
    pub version: usize,
    /// `EXT-X-STREAM-INF` URIs, in order.
    pub variant_uris: Vec<String>,
    /// `CODECS` of each `EXT-X-STREAM-INF`, in the same order.
    pub variant_codecs: Vec<String>,
    /// `EXT-X-I-FRAME-STREAM-INF` URIs, in order.
    pub iframe_uris: Vec<String>,
    /// `EXT-X-MEDIA` URIs, in order.
    pub media_uris: Vec<String>,
    /// Distinct `EXT-X-MEDIA TYPE=AUDIO` group ids, in order.
    pub audio_groups: Vec<String>,
    /// Distinct `EXT-X-MEDIA TYPE=SUBTITLES` group ids, in order.
    pub subtitle_groups: Vec<String>,
}

impl MasterSummary {
    /// Every distinct URI the playlist names (media playlists of renditions,
    /// variants and I-frame variants).
    pub fn uris(&self) -> Vec<&str> {
        distinct(
            self.media_uris
                .iter()
                .chain(&self.variant_uris)
                .chain(&self.iframe_uris),
        )
    }
}

fn distinct<'a>(uris: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for uri in uris {
        if !out.contains(&uri.as_str()) {
            out.push(uri.as_str());
        }
    }
    out
}

/// Tags that m3u8-rs reads in a media playlist: when one shows up as "unknown"
/// it was malformed.
const MEDIA_TAGS: &[&str] = &[
    "X-VERSION",
    "X-TARGETDURATION",
    "X-MEDIA-SEQUENCE",
    "X-DISCONTINUITY-SEQUENCE",
    "X-PLAYLIST-TYPE",
    "X-START",
    "X-BYTERANGE",
    "X-KEY",
    "X-MAP",
    "X-PROGRAM-DATE-TIME",
    "X-DATERANGE",
];

/// Tags that only a master playlist may hold (RFC 8216 § 4.1: a playlist is one
/// kind or the other).
const MASTER_TAGS: &[&str] = &[
    "X-STREAM-INF",
    "X-I-FRAME-STREAM-INF",
    "X-MEDIA",
    "X-SESSION-DATA",
    "X-SESSION-KEY",
];

/// Tags that only a media playlist may hold.
const MEDIA_ONLY_TAGS: &[&str] = &[
    "X-TARGETDURATION",
    "X-MEDIA-SEQUENCE",
    "X-DISCONTINUITY-SEQUENCE",
    "X-PLAYLIST-TYPE",
    "X-I-FRAMES-ONLY",
    "X-ENDLIST",
    "X-BYTERANGE",
    "X-DISCONTINUITY",
    "X-KEY",
    "X-MAP",
    "X-PROGRAM-DATE-TIME",
    "X-DATERANGE",
];

/// Checks a media playlist against RFC 8216 and hlspipe's VOD rules:
/// `#EXTM3U` first; `EXT-X-TARGETDURATION` ≥ every `EXTINF` rounded to the
/// nearest integer (§ 4.3.3.1); `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST`;
/// `EXT-X-INDEPENDENT-SEGMENTS`; `EXT-X-VERSION` high enough for the features
/// used (§ 7); no zero-length segment; an `EXT-X-MAP` before every fMP4 (`.m4s`)
/// segment (§ 3.3). Returns every violation found.
pub fn check_media_playlist(text: &str) -> Result<MediaSummary, Vec<String>> {
    check_playlist(text, false)
}

/// Checks a growing playlist of a title published progressively with the same rules, except
/// that it is `EXT-X-PLAYLIST-TYPE:EVENT`, starts at `EXT-X-START:TIME-OFFSET=0` (RFC 8216
/// § 4.3.5.2), and may not have ended yet (`EXT-X-ENDLIST` optional, § 6.2.1).
pub fn check_event_playlist(text: &str) -> Result<MediaSummary, Vec<String>> {
    check_playlist(text, true)
}

fn check_playlist(text: &str, event: bool) -> Result<MediaSummary, Vec<String>> {
    let mut errors = Vec::new();
    let Some(pl) = read_media_playlist(text, &mut errors) else {
        return Err(errors);
    };
    let (durations, decimal_extinf) = exact_durations(text, &pl, &mut errors);
    if event {
        check_event_tags(&pl, &mut errors);
    } else {
        check_vod_tags(&pl, &mut errors);
    }
    let mut walk = SegmentWalk::default();
    for (i, (segment, &duration)) in pl.segments.iter().zip(&durations).enumerate() {
        walk.segment(i, segment, duration, pl.target_duration, &mut errors);
    }
    let needed = media_version_needed(
        decimal_extinf,
        walk.map_byte_range.is_some() || pl.segments.iter().any(|s| s.byte_range.is_some()),
        pl.i_frames_only,
        !walk.map_uris.is_empty(),
    );
    let version = pl.version.unwrap_or(1);
    if version < needed {
        errors.push(format!(
            "EXT-X-VERSION is {version}, the features used need {needed} (RFC 8216 § 7)"
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(MediaSummary {
        version,
        target_duration: pl.target_duration,
        iframes_only: pl.i_frames_only,
        map_uris: walk.map_uris,
        map_byte_range: walk.map_byte_range,
        segment_uris: pl.segments.iter().map(|s| s.uri.clone()).collect(),
        total_duration: durations.iter().sum(),
        segment_durations: durations,
        segment_byte_ranges: walk.byte_ranges,
    })
}

/// The text as a media playlist, or `None` when it is not one at all; tags m3u8-rs kept
/// as unknown are reported as malformed or as master-only.
fn read_media_playlist(text: &str, errors: &mut Vec<String>) -> Option<MediaPlaylist> {
    if !starts_with_extm3u(text, errors) {
        return None;
    }
    if m3u8_rs::is_master_playlist(text.as_bytes()) {
        errors.push("this is a master playlist, not a media playlist (RFC 8216 § 4.1)".into());
        return None;
    }
    let pl: MediaPlaylist = match m3u8_rs::parse_media_playlist(text.as_bytes()) {
        Ok((rest, pl)) => {
            check_fully_read(text, rest, errors);
            pl
        }
        Err(e) => {
            errors.push(format!("m3u8-rs cannot read it as a media playlist: {e:?}"));
            return None;
        }
    };
    check_single_version_tag(text, errors);
    for tag in pl.segments.iter().flat_map(|s| &s.unknown_tags) {
        if MEDIA_TAGS.contains(&tag.tag.as_str()) {
            errors.push(format!("malformed #EXT-{}", tag_text(tag)));
        } else if MASTER_TAGS.contains(&tag.tag.as_str()) {
            errors.push(format!(
                "master playlist tag #EXT-{} in a media playlist (RFC 8216 § 4.1)",
                tag.tag
            ));
        }
    }
    Some(pl)
}

/// Exact EXTINF values from the text (m3u8-rs keeps an f32), and whether any is decimal.
fn exact_durations(text: &str, pl: &MediaPlaylist, errors: &mut Vec<String>) -> (Vec<f64>, bool) {
    let extinfs = extinf_values(text, errors);
    let durations: Vec<f64> = if extinfs.len() == pl.segments.len() {
        extinfs.iter().map(|(_, d)| *d).collect()
    } else {
        errors.push(format!(
            "{} EXTINF tags for {} media segments: every segment needs exactly one (RFC 8216 § 4.3.2.1)",
            extinfs.len(),
            pl.segments.len()
        ));
        pl.segments.iter().map(|s| f64::from(s.duration)).collect()
    };
    let decimal = extinfs.iter().any(|(text, _)| text.contains('.'));
    (durations, decimal)
}

/// hlspipe writes VOD playlists: segments, a target duration, the type, the end, and
/// independent segments.
/// The tags every media playlist of ours has, VOD or EVENT.
fn check_common_tags(pl: &MediaPlaylist, errors: &mut Vec<String>) {
    if pl.segments.is_empty() {
        errors.push("no media segments".into());
    }
    if pl.target_duration == 0 {
        errors.push("EXT-X-TARGETDURATION is missing or 0 (RFC 8216 § 4.3.3.1)".into());
    }
    if !pl.independent_segments {
        errors.push("EXT-X-INDEPENDENT-SEGMENTS is missing (RFC 8216 § 4.3.5.1)".into());
    }
}

fn check_event_tags(pl: &MediaPlaylist, errors: &mut Vec<String>) {
    check_common_tags(pl, errors);
    if pl.playlist_type != Some(MediaPlaylistType::Event) {
        errors.push("EXT-X-PLAYLIST-TYPE:EVENT is missing (RFC 8216 § 4.3.3.5)".into());
    }
    if pl.start.as_ref().map(|s| s.time_offset) != Some(0.0) {
        errors.push("EXT-X-START:TIME-OFFSET=0 is missing (RFC 8216 § 4.3.5.2)".into());
    }
}

fn check_vod_tags(pl: &MediaPlaylist, errors: &mut Vec<String>) {
    check_common_tags(pl, errors);
    if pl.playlist_type != Some(MediaPlaylistType::Vod) {
        errors.push("EXT-X-PLAYLIST-TYPE:VOD is missing (RFC 8216 § 4.3.3.5)".into());
    }
    if !pl.end_list {
        errors.push("EXT-X-ENDLIST is missing (RFC 8216 § 4.3.3.4)".into());
    }
}

/// What carries over from one media segment to the next: the map in effect and the end
/// of the previous sub-range.
#[derive(Default)]
struct SegmentWalk<'a> {
    map_uris: Vec<String>,
    map_byte_range: Option<(u64, u64)>,
    map_in_effect: bool,
    byte_ranges: Vec<Option<(u64, u64)>>,
    /// (uri, end offset) of the previous segment's sub-range (RFC 8216 § 4.3.2.2).
    previous_range: Option<(&'a str, u64)>,
}

impl<'a> SegmentWalk<'a> {
    fn segment(
        &mut self,
        i: usize,
        segment: &'a m3u8_rs::MediaSegment,
        duration: f64,
        target_duration: u64,
        errors: &mut Vec<String>,
    ) {
        let name = format!("segment {i} ({})", segment.uri);
        if let Some(map) = &segment.map {
            self.map(map, errors);
        }
        if segment.uri.trim().is_empty() {
            errors.push(format!("{name}: empty URI"));
        }
        if duration <= 0.0 {
            errors.push(format!("{name}: zero-length segment (EXTINF {duration})"));
        }
        let rounded = duration.round();
        if rounded > target_duration as f64 {
            errors.push(format!(
                "{name}: EXTINF {duration} rounds to {rounded}, above EXT-X-TARGETDURATION {target_duration} (RFC 8216 § 4.3.3.1)"
            ));
        }
        if is_fmp4_segment(&segment.uri) && !self.map_in_effect {
            errors.push(format!(
                "{name}: fMP4 segment without a preceding EXT-X-MAP (RFC 8216 § 3.3)"
            ));
        }
        let range = self.byte_range(&name, segment, errors);
        self.byte_ranges.push(range);
    }

    /// m3u8-rs attaches an EXT-X-MAP to the next segment only; the tag applies to every
    /// segment after it (RFC 8216 § 4.3.2.5).
    fn map(&mut self, map: &m3u8_rs::Map, errors: &mut Vec<String>) {
        self.map_in_effect = true;
        if map.uri.is_empty() {
            errors.push("EXT-X-MAP has an empty URI".into());
        }
        if self.map_uris.is_empty() {
            self.map_byte_range = map
                .byte_range
                .as_ref()
                .map(|r| (r.length, r.offset.unwrap_or(0)));
        }
        if !self.map_uris.contains(&map.uri) {
            self.map_uris.push(map.uri.clone());
        }
    }

    /// The segment's EXT-X-BYTERANGE as (length, offset), an absent offset resolved from
    /// the previous sub-range of the same resource (RFC 8216 § 4.3.2.2).
    fn byte_range(
        &mut self,
        name: &str,
        segment: &'a m3u8_rs::MediaSegment,
        errors: &mut Vec<String>,
    ) -> Option<(u64, u64)> {
        let Some(r) = &segment.byte_range else {
            self.previous_range = None;
            return None;
        };
        let offset = match (r.offset, self.previous_range) {
            (Some(o), _) => Some(o),
            (None, Some((uri, end))) if uri == segment.uri => Some(end),
            (None, _) => {
                errors.push(format!(
                    "{name}: EXT-X-BYTERANGE without offset must follow a sub-range of the same resource (RFC 8216 § 4.3.2.2)"
                ));
                None
            }
        };
        if r.length == 0 {
            errors.push(format!("{name}: zero-length EXT-X-BYTERANGE"));
        }
        self.previous_range = None;
        match offset.map(|o| (o, o.checked_add(r.length))) {
            Some((o, Some(end))) => {
                self.previous_range = Some((segment.uri.as_str(), end));
                Some((r.length, o))
            }
            Some((_, None)) => {
                errors.push(format!("{name}: EXT-X-BYTERANGE overflows"));
                None
            }
            None => None,
        }
    }
}

/// Checks a master playlist: `#EXTM3U` first; `EXT-X-INDEPENDENT-SEGMENTS`;
/// every `EXT-X-STREAM-INF` with a URI line, `BANDWIDTH` (> 0, ≥
/// `AVERAGE-BANDWIDTH`), `CODECS`, and `RESOLUTION` when a video codec is listed
/// (RFC 8216 § 4.3.4.2); every `AUDIO` group it names exists (§ 4.3.4.2); each
/// audio group has exactly one `DEFAULT=YES` member and distinct `NAME`s
/// (§ 4.3.4.1.1), and a `URI`; every I-frame variant has a `URI` and `CODECS`.
/// No tag our master uses needs an `EXT-X-VERSION` above 1 (§ 7), so only a
/// repeated version tag is checked there.
pub fn check_master_playlist(text: &str) -> Result<MasterSummary, Vec<String>> {
    let mut errors = Vec::new();
    let Some(pl) = read_master_playlist(text, &mut errors) else {
        return Err(errors);
    };
    let (groups, audio_groups, media_uris) = check_media_renditions(&pl, &mut errors);
    let subtitle_groups = check_subtitle_groups(&pl, &mut errors);
    let mut variant_uris = Vec::new();
    let mut variant_codecs = Vec::new();
    let mut iframe_uris = Vec::new();
    for (i, v) in pl.variants.iter().enumerate() {
        check_variant(i, v, &groups, &mut errors);
        if let Some(group) = v
            .subtitles
            .as_ref()
            .filter(|g| !subtitle_groups.contains(g))
        {
            errors.push(format!(
                "EXT-X-STREAM-INF #{i} ({}): SUBTITLES=\"{group}\" names no EXT-X-MEDIA TYPE=SUBTITLES group (RFC 8216 § 4.3.4.2)",
                v.uri
            ));
        }
        if v.is_i_frame {
            iframe_uris.push(v.uri.clone());
        } else {
            variant_uris.push(v.uri.clone());
            variant_codecs.push(v.codecs.clone().unwrap_or_default());
        }
    }
    if variant_uris.is_empty() {
        errors.push("no EXT-X-STREAM-INF variant".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(MasterSummary {
        version: pl.version.unwrap_or(1),
        variant_uris,
        variant_codecs,
        iframe_uris,
        media_uris,
        audio_groups,
        subtitle_groups,
    })
}

/// The `TYPE=SUBTITLES` groups: distinct `NAME`s and at most one `DEFAULT=YES` in each
/// (RFC 8216 § 4.3.4.1.1). Returns their ids in order.
fn check_subtitle_groups(pl: &MasterPlaylist, errors: &mut Vec<String>) -> Vec<String> {
    let mut groups: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    let mut ids = Vec::new();
    for m in pl
        .alternatives
        .iter()
        .filter(|m| m.media_type == AlternativeMediaType::Subtitles)
    {
        if !ids.contains(&m.group_id) {
            ids.push(m.group_id.clone());
        }
        let (names, defaults) = groups.entry(m.group_id.as_str()).or_default();
        if names.contains(&m.name.as_str()) {
            errors.push(format!(
                "subtitle group \"{}\": two renditions named \"{}\" (RFC 8216 § 4.3.4.1.1)",
                m.group_id, m.name
            ));
        }
        names.push(&m.name);
        *defaults += usize::from(m.default);
        if *defaults > 1 {
            errors.push(format!(
                "subtitle group \"{}\" has more than one DEFAULT=YES (RFC 8216 § 4.3.4.1.1)",
                m.group_id
            ));
        }
    }
    ids
}

/// The text as a master playlist, or `None` when it is not one at all; tags m3u8-rs kept
/// as unknown are reported as malformed or as media-only.
fn read_master_playlist(text: &str, errors: &mut Vec<String>) -> Option<MasterPlaylist> {
    if !starts_with_extm3u(text, errors) {
        return None;
    }
    if !m3u8_rs::is_master_playlist(text.as_bytes()) {
        errors.push("this is not a master playlist: no variant tags, or media playlist tags first (RFC 8216 § 4.1)".into());
        return None;
    }
    let pl: MasterPlaylist = match m3u8_rs::parse_master_playlist(text.as_bytes()) {
        Ok((rest, pl)) => {
            check_fully_read(text, rest, errors);
            pl
        }
        Err(e) => {
            errors.push(format!(
                "m3u8-rs cannot read it as a master playlist: {e:?}"
            ));
            return None;
        }
    };
    check_single_version_tag(text, errors);
    check_variant_uri_lines(text, errors);
    for tag in &pl.unknown_tags {
        if MASTER_TAGS.contains(&tag.tag.as_str()) || tag.tag == "X-VERSION" {
            errors.push(format!(
                "malformed #EXT-{} (a required attribute such as BANDWIDTH, TYPE, GROUP-ID or NAME is missing or unreadable)",
                tag_text(tag)
            ));
        } else if MEDIA_ONLY_TAGS.contains(&tag.tag.as_str()) {
            errors.push(format!(
                "media playlist tag #EXT-{} in a master playlist (RFC 8216 § 4.1)",
                tag.tag
            ));
        }
    }
    if !pl.independent_segments {
        errors.push("EXT-X-INDEPENDENT-SEGMENTS is missing (RFC 8216 § 4.3.5.1)".into());
    }
    Some(pl)
}

/// Audio group id → (member names, DEFAULT=YES count).
type AudioGroups<'a> = BTreeMap<&'a str, (Vec<&'a str>, usize)>;

/// The EXT-X-MEDIA renditions: each has a URI (closed captions excepted), and each audio
/// group distinct NAMEs and exactly one DEFAULT=YES (RFC 8216 § 4.3.4.1.1). Returns the
/// audio groups, their ids in order, and the renditions' URIs.
fn check_media_renditions<'a>(
    pl: &'a MasterPlaylist,
    errors: &mut Vec<String>,
) -> (AudioGroups<'a>, Vec<String>, Vec<String>) {
    let mut groups: AudioGroups<'a> = BTreeMap::new();
    let mut audio_groups: Vec<String> = Vec::new();
    let mut media_uris = Vec::new();
    for media in &pl.alternatives {
        match &media.uri {
            Some(uri) if !uri.trim().is_empty() => media_uris.push(uri.clone()),
            _ if media.media_type == AlternativeMediaType::ClosedCaptions => {}
            _ => errors.push(format!(
                "EXT-X-MEDIA {} \"{}\" has no URI",
                media.media_type, media.name
            )),
        }
        if media.media_type != AlternativeMediaType::Audio {
            continue;
        }
        if !audio_groups.contains(&media.group_id) {
            audio_groups.push(media.group_id.clone());
        }
        let (names, defaults) = groups.entry(media.group_id.as_str()).or_default();
        if names.contains(&media.name.as_str()) {
            errors.push(format!(
                "audio group \"{}\": two renditions named \"{}\" (RFC 8216 § 4.3.4.1.1)",
                media.group_id, media.name
            ));
        }
        names.push(&media.name);
        *defaults += usize::from(media.default);
    }
    for (group, (_, defaults)) in &groups {
        if *defaults != 1 {
            errors.push(format!(
                "audio group \"{group}\" has {defaults} DEFAULT=YES renditions, needs exactly one (RFC 8216 § 4.3.4.1.1 allows at most one)"
            ));
        }
    }
    (groups, audio_groups, media_uris)
}

/// One EXT-X-STREAM-INF or EXT-X-I-FRAME-STREAM-INF (RFC 8216 § 4.3.4.2, § 4.3.4.3).
fn check_variant(
    i: usize,
    v: &m3u8_rs::VariantStream,
    groups: &AudioGroups<'_>,
    errors: &mut Vec<String>,
) {
    let kind = if v.is_i_frame {
        "EXT-X-I-FRAME-STREAM-INF"
    } else {
        "EXT-X-STREAM-INF"
    };
    let name = format!("{kind} #{i} ({})", v.uri);
    if v.is_i_frame && v.uri.trim().is_empty() {
        errors.push(format!("{name}: no URI attribute (RFC 8216 § 4.3.4.3)"));
    }
    if v.bandwidth == 0 {
        errors.push(format!("{name}: BANDWIDTH is 0"));
    }
    if let Some(avg) = v.average_bandwidth {
        if avg > v.bandwidth {
            errors.push(format!(
                "{name}: AVERAGE-BANDWIDTH {avg} above BANDWIDTH {} (RFC 8216 § 4.3.4.2)",
                v.bandwidth
            ));
        }
    }
    match v.codecs.as_deref() {
        None | Some("") => errors.push(format!("{name}: no CODECS (RFC 8216 § 4.3.4.2)")),
        Some(codecs) => {
            if has_video_codec(codecs) && v.resolution.is_none() {
                errors.push(format!(
                    "{name}: CODECS lists video but there is no RESOLUTION (RFC 8216 § 4.3.4.2)"
                ));
            }
        }
    }
    if let Some(group) = &v.audio {
        if !groups.contains_key(group.as_str()) {
            errors.push(format!(
                "{name}: AUDIO=\"{group}\" names no EXT-X-MEDIA TYPE=AUDIO group (RFC 8216 § 4.3.4.2)"
            ));
        }
    }
}

/// RFC 8216 § 4.3.1.1: the first line is `#EXTM3U`; § 4.1: no byte order mark.
fn starts_with_extm3u(text: &str, errors: &mut Vec<String>) -> bool {
    if text.starts_with('\u{feff}') {
        errors.push("starts with a byte order mark (RFC 8216 § 4.1 forbids it)".into());
        return false;
    }
    let first = text.lines().next().unwrap_or("");
    if first != "#EXTM3U" {
        errors.push(format!(
            "first line is {:?}, not #EXTM3U (RFC 8216 § 4.3.1.1)",
            clip(first)
        ));
        return false;
    }
    true
}

/// m3u8-rs returns what it read up to the first line it could not parse.
fn check_fully_read(text: &str, rest: &[u8], errors: &mut Vec<String>) {
    if rest.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let offset = text.len().saturating_sub(rest.len());
    let line = text
        .as_bytes()
        .get(..offset)
        .map_or(0, |read| read.iter().filter(|&&b| b == b'\n').count())
        + 1;
    let unread = String::from_utf8_lossy(rest);
    errors.push(format!(
        "line {line}: m3u8-rs stopped reading here: {:?}",
        clip(unread.lines().next().unwrap_or(""))
    ));
}

/// RFC 8216 § 4.3.1.2: at most one `EXT-X-VERSION` tag.
fn check_single_version_tag(text: &str, errors: &mut Vec<String>) {
    let count = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-VERSION"))
        .count();
    if count > 1 {
        errors.push(format!(
            "{count} EXT-X-VERSION tags, at most one allowed (RFC 8216 § 4.3.1.2)"
        ));
    }
}

/// Every `EXT-X-STREAM-INF` is followed by its URI line, and every URI line
/// follows one (RFC 8216 § 4.3.4.2).
fn check_variant_uri_lines(text: &str, errors: &mut Vec<String>) {
    let mut pending: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.starts_with("#EXT-X-STREAM-INF") {
            if let Some(at) = pending.replace(line_no) {
                errors.push(format!("line {at}: EXT-X-STREAM-INF without a URI line"));
            }
            continue;
        }
        let is_uri_line = !line.is_empty() && !line.starts_with('#');
        if is_uri_line && pending.take().is_none() {
            errors.push(format!(
                "line {line_no}: URI line {:?} without a preceding EXT-X-STREAM-INF",
                clip(line)
            ));
        }
    }
    if let Some(at) = pending {
        errors.push(format!("line {at}: EXT-X-STREAM-INF without a URI line"));
    }
}

/// The `EXTINF` durations as written, with their text; a value that is not a
/// decimal-integer or decimal-floating-point (RFC 8216 § 4.2) is reported.
fn extinf_values<'a>(text: &'a str, errors: &mut Vec<String>) -> Vec<(&'a str, f64)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(value) = line.strip_prefix("#EXTINF:") else {
            continue;
        };
        let value = value.split(',').next().unwrap_or("").trim();
        match parse_decimal(value) {
            Some(d) => out.push((value, d)),
            None => errors.push(format!(
                "line {}: EXTINF duration {:?} is not a decimal number (RFC 8216 § 4.3.2.1)",
                i + 1,
                clip(value)
            )),
        }
    }
    out
}

/// decimal-integer or decimal-floating-point (RFC 8216 § 4.2): digits, then
/// optionally `.` and digits. Rust's `f64` parser alone would accept `inf`,
/// `1e3` or `-1`.
fn parse_decimal(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    s.parse().ok()
}

/// RFC 8216 § 7, as in the writer: decimal `EXTINF` needs 3; byte ranges and
/// I-frames-only need 4; `EXT-X-MAP` needs 5 with I-frames-only, else 6.
fn media_version_needed(
    decimal_extinf: bool,
    byte_ranges: bool,
    iframes: bool,
    map: bool,
) -> usize {
    let mut v = if decimal_extinf { 3 } else { 1 };
    if byte_ranges || iframes {
        v = 4;
    }
    if map {
        v = v.max(if iframes { 5 } else { 6 });
    }
    v
}

/// fMP4 media segments by their usual extension, query and fragment ignored.
fn is_fmp4_segment(uri: &str) -> bool {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    path.to_ascii_lowercase().ends_with(".m4s")
}

/// Whether a CODECS value lists a video codec (RFC 6381 sample entry types).
fn has_video_codec(codecs: &str) -> bool {
    const VIDEO: &[&str] = &[
        "avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "dva1", "dvav", "av01", "vp09", "vp08",
    ];
    codecs.split(',').any(|c| {
        let entry = c.trim().split('.').next().unwrap_or("");
        VIDEO.contains(&entry)
    })
}

fn tag_text(tag: &m3u8_rs::ExtTag) -> String {
    match &tag.rest {
        Some(rest) => format!("{}:{}", tag.tag, clip(rest)),
        None => tag.tag.clone(),
    }
}

/// At most 80 characters of untrusted text for a message.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hls::{
        master_playlist, media_playlist, AudioRendition, MasterPlaylistSpec, MediaPlaylistSpec,
        SegmentEntry, Variant,
    };

    const GOOD_MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-TARGETDURATION:7
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:6.00600,
seg00000.m4s
#EXTINF:6.50600,
seg00001.m4s
#EXTINF:2.49999,
seg00002.m4s
#EXT-X-ENDLIST
";

    const GOOD_MASTER: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,URI=\"a/en.m3u8\",GROUP-ID=\"aac\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"
#EXT-X-MEDIA:TYPE=AUDIO,URI=\"a/fr.m3u8\",GROUP-ID=\"aac\",LANGUAGE=\"fr\",NAME=\"Français\",AUTOSELECT=YES,CHANNELS=\"2\"
#EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2400000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aac\"
v/720p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO=\"aac\"
v/360p.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=310000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,URI=\"v/720p-iframes.m3u8\"
";

    fn media_errors(text: &str) -> Vec<String> {
        check_media_playlist(text).expect_err("should fail")
    }

    fn master_errors(text: &str) -> Vec<String> {
        check_master_playlist(text).expect_err("should fail")
    }

    fn has(errors: &[String], needle: &str) -> bool {
        errors.iter().any(|e| e.contains(needle))
    }

    #[test]
    fn good_media_playlist_summary() {
        let s = check_media_playlist(GOOD_MEDIA).unwrap();
        assert_eq!(s.version, 6);
        assert_eq!(s.target_duration, 7);
        assert_eq!(s.map_uris, ["init.mp4"]);
        assert_eq!(
            s.segment_uris,
            ["seg00000.m4s", "seg00001.m4s", "seg00002.m4s"]
        );
        assert_eq!(s.segment_durations, [6.006, 6.506, 2.49999]);
        assert!((s.total_duration - 15.01199).abs() < 1e-9);
        assert_eq!(
            s.uris(),
            ["init.mp4", "seg00000.m4s", "seg00001.m4s", "seg00002.m4s"]
        );
    }

    #[test]
    fn growing_playlists_pass_the_event_rules_and_only_those() {
        let spec = MediaPlaylistSpec {
            init_uri: Some("init.mp4".into()),
            init_byte_range: None,
            iframes_only: false,
            segments: vec![
                SegmentEntry {
                    uri: "seg_00001.m4s".into(),
                    duration: 6.0,
                    byte_range: None,
                },
                SegmentEntry {
                    uri: "seg_00002.m4s".into(),
                    duration: 4.0,
                    byte_range: None,
                },
            ],
        };
        for (upto, ended) in [(1, false), (2, false), (2, true)] {
            let text = crate::media::hls::event_playlist(&spec, upto, ended, None);
            let s = check_event_playlist(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert_eq!(s.segment_uris.len(), upto);
            assert!(check_media_playlist(&text).is_err(), "not VOD");
        }
        let vod = media_playlist(&spec);
        let errors = check_event_playlist(&vod).expect_err("VOD is not EVENT");
        assert!(has(&errors, "EXT-X-PLAYLIST-TYPE:EVENT"), "{errors:?}");
        assert!(has(&errors, "EXT-X-START"), "{errors:?}");
    }

    #[test]
    fn writer_output_passes_the_checker() {
        let spec = MediaPlaylistSpec {
            init_uri: Some("v.mp4".into()),
            init_byte_range: Some((700, 0)),
            iframes_only: false,
            segments: vec![
                SegmentEntry {
                    uri: "v.mp4".into(),
                    duration: 6.4999996,
                    byte_range: Some((1000, 700)),
                },
                SegmentEntry {
                    uri: "v.mp4".into(),
                    duration: 3.0,
                    byte_range: Some((500, 1700)),
                },
            ],
        };
        let s = check_media_playlist(&media_playlist(&spec)).unwrap();
        assert_eq!(s.target_duration, 7);
        assert_eq!(s.map_byte_range, Some((700, 0)));
        assert_eq!(
            s.segment_byte_ranges,
            [Some((1000, 700)), Some((500, 1700))]
        );
        assert_eq!(s.uris(), ["v.mp4"]);

        let master = MasterPlaylistSpec {
            audio: vec![AudioRendition {
                group_id: "aac".into(),
                name: "English".into(),
                language: Some("en".into()),
                default: true,
                autoselect: true,
                channels: 2,
                joc_complexity: None,
                uri: "a.m3u8".into(),
            }],
            variants: vec![Variant {
                uri: "v.m3u8".into(),
                bandwidth: 2_000_000,
                average_bandwidth: 1_500_000,
                codecs: "hvc1.1.6.L93.B0,mp4a.40.2".into(),
                resolution: Some((1920, 1080)),
                frame_rate: Some(24.0),
                video_range: Some(crate::media::hls::VideoRange::Pq),
                supplemental_codecs: None,
                audio_group: Some("aac".into()),
                subtitle_group: None,
            }],
            subtitles: vec![],
            iframe_variants: vec![],
        };
        let s = check_master_playlist(&master_playlist(&master)).unwrap();
        assert_eq!(s.uris(), ["a.m3u8", "v.m3u8"]);
    }

    #[test]
    fn byte_range_offsets_are_resolved_or_reported() {
        let text = GOOD_MEDIA
            .replace(
                "#EXT-X-MAP:URI=\"init.mp4\"",
                "#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"800@0\"",
            )
            .replace(
                "#EXTINF:6.00600,\nseg00000.m4s",
                "#EXTINF:6.00600,\n#EXT-X-BYTERANGE:100@800\nall.mp4",
            )
            .replace(
                "#EXTINF:6.50600,\nseg00001.m4s",
                "#EXTINF:6.50600,\n#EXT-X-BYTERANGE:200\nall.mp4",
            )
            .replace(
                "#EXTINF:2.49999,\nseg00002.m4s",
                "#EXTINF:2.49999,\n#EXT-X-BYTERANGE:300\nother.mp4",
            );
        let errors = media_errors(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(has(
            &errors,
            "segment 2 (other.mp4): EXT-X-BYTERANGE without offset"
        ));

        let ok = text.replace(
            "#EXT-X-BYTERANGE:300\nother.mp4",
            "#EXT-X-BYTERANGE:300\nall.mp4",
        );
        let s = check_media_playlist(&ok).unwrap();
        assert_eq!(
            s.segment_byte_ranges,
            [Some((100, 800)), Some((200, 900)), Some((300, 1100))]
        );
    }

    #[test]
    fn media_rules_each_reported() {
        let bad = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXTINF:6.50000,
seg0.m4s
#EXTINF:0.00000,
seg1.ts
";
        let errors = media_errors(bad);
        for needle in [
            "segment 0 (seg0.m4s): EXTINF 6.5 rounds to 7, above EXT-X-TARGETDURATION 6",
            "segment 1 (seg1.ts): zero-length segment",
            "segment 0 (seg0.m4s): fMP4 segment without a preceding EXT-X-MAP",
            "EXT-X-PLAYLIST-TYPE:VOD is missing",
            "EXT-X-ENDLIST is missing",
            "EXT-X-INDEPENDENT-SEGMENTS is missing",
        ] {
            assert!(has(&errors, needle), "{needle}: {errors:#?}");
        }
        assert_eq!(errors.len(), 6, "{errors:#?}");
    }

    #[test]
    fn version_too_low_for_map() {
        let errors = media_errors(&GOOD_MEDIA.replace("VERSION:6", "VERSION:5"));
        assert_eq!(
            errors,
            ["EXT-X-VERSION is 5, the features used need 6 (RFC 8216 § 7)"]
        );
        let errors = media_errors(&GOOD_MEDIA.replace("#EXT-X-VERSION:6\n", ""));
        assert!(has(&errors, "EXT-X-VERSION is 1, the features used need 6"));
    }

    #[test]
    fn target_duration_rounding_uses_the_exact_text() {
        // 200.49999 is 200.5 as f32; the rule is about the decimal written.
        let text = GOOD_MEDIA
            .replace("TARGETDURATION:7", "TARGETDURATION:200")
            .replace("6.50600", "200.49999");
        assert!(check_media_playlist(&text).is_ok());
        let text = text.replace("200.49999", "200.50000");
        assert!(has(&media_errors(&text), "rounds to 201"));
    }

    #[test]
    fn malformed_lines_are_not_silently_dropped() {
        let errors = media_errors(&GOOD_MEDIA.replace("#EXTINF:6.50600,", "#EXTINF:abc,"));
        assert!(
            has(&errors, "line 9: EXTINF duration \"abc\""),
            "{errors:#?}"
        );
        assert!(
            has(&errors, "2 EXTINF tags for 3 media segments"),
            "{errors:#?}"
        );

        let errors = media_errors(
            &GOOD_MEDIA.replace("#EXT-X-MAP:URI=\"init.mp4\"", "#EXT-X-MAP:URI=init.mp4"),
        );
        assert!(
            has(&errors, "malformed #EXT-X-MAP:URI=init.mp4"),
            "{errors:#?}"
        );
        assert!(has(&errors, "fMP4 segment without a preceding EXT-X-MAP"));

        let errors = media_errors(
            &GOOD_MEDIA.replace("#EXT-X-VERSION:6\n", "#EXT-X-VERSION:6\n#EXT-X-VERSION:6\n"),
        );
        assert!(has(&errors, "2 EXT-X-VERSION tags"));
    }

    #[test]
    fn first_line_must_be_extm3u() {
        assert!(has(
            &media_errors(&GOOD_MEDIA.replacen("#EXTM3U\n", "", 1)),
            "not #EXTM3U"
        ));
        assert!(has(
            &media_errors(&format!("\n{GOOD_MEDIA}")),
            "not #EXTM3U"
        ));
        assert!(has(
            &media_errors(&format!("\u{feff}{GOOD_MEDIA}")),
            "byte order mark"
        ));
        assert!(has(&master_errors(""), "not #EXTM3U"));
    }

    #[test]
    fn playlist_kinds_are_not_mixed_up() {
        assert!(has(&media_errors(GOOD_MASTER), "this is a master playlist"));
        assert!(has(&master_errors(GOOD_MEDIA), "not a master playlist"));
    }

    #[test]
    fn good_master_playlist_summary() {
        let s = check_master_playlist(GOOD_MASTER).unwrap();
        assert_eq!(s.version, 6);
        assert_eq!(s.variant_uris, ["v/720p.m3u8", "v/360p.m3u8"]);
        assert_eq!(
            s.variant_codecs,
            ["avc1.64001f,mp4a.40.2", "avc1.42c01e,mp4a.40.2"]
        );
        assert_eq!(s.iframe_uris, ["v/720p-iframes.m3u8"]);
        assert_eq!(s.media_uris, ["a/en.m3u8", "a/fr.m3u8"]);
        assert_eq!(s.audio_groups, ["aac"]);
        assert_eq!(s.uris().len(), 5);
    }

    #[test]
    fn master_variant_rules() {
        let bad = GOOD_MASTER
            .replace(
                "BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,",
                "AVERAGE-BANDWIDTH=700000,",
            )
            .replace(",RESOLUTION=1280x720,FRAME-RATE", ",FRAME-RATE")
            .replace("CODECS=\"avc1.64001f\",", "")
            .replace("AUDIO=\"aac\"\nv/720p", "AUDIO=\"ac3\"\nv/720p");
        let errors = master_errors(&bad);
        for needle in [
            "malformed #EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=700000",
            "EXT-X-STREAM-INF #0 (v/360p.m3u8): CODECS lists video but there is no RESOLUTION",
            "AUDIO=\"ac3\" names no EXT-X-MEDIA TYPE=AUDIO group",
            "EXT-X-I-FRAME-STREAM-INF #1 (v/720p-iframes.m3u8): no CODECS",
        ] {
            assert!(has(&errors, needle), "{needle}: {errors:#?}");
        }
        // m3u8-rs dropped the malformed variant and gave its URI line to the one
        // before: the messages name that URI, and the malformed tag explains why.
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn master_audio_group_rules() {
        let no_default = GOOD_MASTER.replace("DEFAULT=YES,", "");
        assert!(has(
            &master_errors(&no_default),
            "has 0 DEFAULT=YES renditions"
        ));
        let two_defaults =
            GOOD_MASTER.replace("NAME=\"Français\",", "NAME=\"Français\",DEFAULT=YES,");
        assert!(has(
            &master_errors(&two_defaults),
            "has 2 DEFAULT=YES renditions"
        ));
        let same_name = GOOD_MASTER.replace("NAME=\"Français\"", "NAME=\"English\"");
        assert!(has(
            &master_errors(&same_name),
            "two renditions named \"English\""
        ));
        let no_uri = GOOD_MASTER.replace("URI=\"a/fr.m3u8\",", "");
        assert!(has(
            &master_errors(&no_uri),
            "EXT-X-MEDIA AUDIO \"Français\" has no URI"
        ));
    }

    #[test]
    fn master_misc_rules() {
        let errors = master_errors(&GOOD_MASTER.replace("#EXT-X-INDEPENDENT-SEGMENTS\n", ""));
        assert_eq!(
            errors,
            ["EXT-X-INDEPENDENT-SEGMENTS is missing (RFC 8216 § 4.3.5.1)"]
        );
        let errors = master_errors(&GOOD_MASTER.replace("\nv/360p.m3u8", ""));
        assert!(
            has(&errors, "line 8: EXT-X-STREAM-INF without a URI line"),
            "{errors:#?}"
        );
        let errors = master_errors(
            &GOOD_MASTER.replace("AVERAGE-BANDWIDTH=700000", "AVERAGE-BANDWIDTH=7000000"),
        );
        assert!(has(
            &errors,
            "AVERAGE-BANDWIDTH 7000000 above BANDWIDTH 900000"
        ));
        let stray = GOOD_MASTER.replace(
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            "#EXT-X-INDEPENDENT-SEGMENTS\nstray.m3u8\n",
        );
        let errors = master_errors(&stray);
        assert_eq!(
            errors,
            ["line 4: URI line \"stray.m3u8\" without a preceding EXT-X-STREAM-INF"]
        );
        let errors = master_errors(&format!("{GOOD_MASTER}#EXT-X-ENDLIST\n"));
        assert!(
            has(
                &errors,
                "media playlist tag #EXT-X-ENDLIST in a master playlist"
            ),
            "{errors:#?}"
        );
    }

    /// Every prefix and some mangled variants of good playlists: errors, never panics.
    #[test]
    fn arbitrary_text_never_panics() {
        let mut inputs: Vec<String> = Vec::new();
        for good in [GOOD_MEDIA, GOOD_MASTER] {
            for (i, c) in good.char_indices() {
                inputs.push(good[..i].to_string());
                inputs.push(format!("{}{}", &good[..i], &good[i + c.len_utf8()..]));
            }
            inputs.push(good.replace('\n', "\r\n"));
            inputs.push(good.replace('"', ""));
            inputs.push(good.replace('=', ""));
            inputs.push(good.replace(',', "\n"));
            inputs.push(good.replace(':', "::"));
        }
        inputs.extend(
            [
                "#EXTM3U",
                "#EXTM3U\n#EXTINF:99999999999999999999999999,\na",
                "#EXTM3U\n#EXT-X-TARGETDURATION:99999999999999999999999\n",
                "#EXTM3U\n#EXT-X-BYTERANGE:18446744073709551615@18446744073709551615\n#EXTINF:1,\na\n#EXT-X-BYTERANGE:1\n#EXTINF:1,\na",
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\n",
                "#EXTM3U\n#EXT-X-MEDIA:\n",
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=x,\"\n\n",
                "#EXTM3U\n\u{0}\u{fffd}é",
            ]
            .map(String::from),
        );
        for text in &inputs {
            let _ = check_media_playlist(text);
            let _ = check_master_playlist(text);
        }
    }
}
