//! HLS playlists (RFC 8216 and draft-pantos-hls-rfc8216bis) and CODECS strings.
//!
//! Pure: the specs below go in, playlist text comes out. Nothing here touches
//! storage; `package` decides names and order, `publish` writes.

pub mod codecs;
mod playlist;

pub use crate::media::model::VideoRange;
pub use playlist::{event_playlist, master_playlist, media_playlist, target_duration};

/// One media segment line of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    /// URI relative to the media playlist.
    pub uri: String,
    /// Exact duration in seconds (written to `EXTINF` with 5 decimals).
    pub duration: f64,
    /// `EXT-X-BYTERANGE` as (length, offset), for byte-range and I-frame playlists.
    pub byte_range: Option<(u64, u64)>,
}

/// A media playlist (RFC 8216 § 4.3.3): VOD, ending with `EXT-X-ENDLIST`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylistSpec {
    /// `EXT-X-MAP` URI (fMP4 init segment); `None` for MPEG-TS.
    pub init_uri: Option<String>,
    /// `EXT-X-MAP` BYTERANGE as (length, offset).
    pub init_byte_range: Option<(u64, u64)>,
    /// `EXT-X-I-FRAMES-ONLY` playlist.
    pub iframes_only: bool,
    pub segments: Vec<SegmentEntry>,
}

/// An `EXT-X-MEDIA TYPE=AUDIO` rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    pub group_id: String,
    pub name: String,
    /// RFC 5646 tag (`en`, `fr`); `None` when the source said `und`.
    pub language: Option<String>,
    pub default: bool,
    pub autoselect: bool,
    /// Channel count, written as `CHANNELS="2"`.
    pub channels: u16,
    /// E-AC-3 with Dolby Atmos: the JOC complexity index, written instead of the count as
    /// `CHANNELS="16/JOC"` (draft-pantos-hls-rfc8216bis § 4.4.6.1; Apple HLS authoring
    /// specification).
    pub joc_complexity: Option<u8>,
    pub uri: String,
}

/// An `EXT-X-MEDIA TYPE=SUBTITLES` rendition (RFC 8216 § 4.3.4.1): a WebVTT media
/// playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtitleRendition {
    pub group_id: String,
    pub name: String,
    /// RFC 5646 tag; `None` when unknown (`und`).
    pub language: Option<String>,
    pub default: bool,
    pub autoselect: bool,
    /// `FORCED=YES`: shown when the viewer picked no subtitles.
    pub forced: bool,
    /// `CHARACTERISTICS`, e.g. Apple's accessibility UTIs for SDH.
    pub characteristics: Option<String>,
    pub uri: String,
}

/// An `EXT-X-STREAM-INF` variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak segment bit rate in bits/s, audio of the group included (RFC 8216 § 4.3.4.2).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// Every codec of the variant, video first: `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
    /// Written rounded to 3 decimals.
    pub frame_rate: Option<f64>,
    /// `VIDEO-RANGE`, written when not SDR (its absence means SDR: draft-pantos-hls-rfc8216bis
    /// § 4.4.6.2).
    pub video_range: Option<VideoRange>,
    /// `SUPPLEMENTAL-CODECS` (Dolby Vision over a compatible base layer).
    pub supplemental_codecs: Option<String>,
    pub audio_group: Option<String>,
    /// `SUBTITLES` group id.
    pub subtitle_group: Option<String>,
}

/// An `EXT-X-I-FRAME-STREAM-INF` line.
#[derive(Debug, Clone, PartialEq)]
pub struct IFrameVariant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
    pub video_range: Option<VideoRange>,
    pub supplemental_codecs: Option<String>,
}

/// A master (multivariant) playlist (RFC 8216 § 4.3.4).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MasterPlaylistSpec {
    pub audio: Vec<AudioRendition>,
    pub subtitles: Vec<SubtitleRendition>,
    pub variants: Vec<Variant>,
    pub iframe_variants: Vec<IFrameVariant>,
}
