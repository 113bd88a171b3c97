//! What a title is made of and reports, below both the packager and the subtitle builder:
//! the inputs, the rendition summary the manifest and the CLI show, and the two small rules
//! every rendition follows (bit rates, unique names).

use crate::media::hls;
use crate::media::model::{TrackKind, VideoRange};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::source::Source;
use std::sync::Arc;

/// One input of a title.
pub struct Input {
    pub source: Arc<dyn Source>,
    /// The store's ETag for the input, when it has one. Identifies the content for
    /// the version hash; without it the moov fingerprint is used.
    pub etag: Option<String>,
}

/// What the manifest and the CLI report about a rendition.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rendition {
    pub name: String,
    pub kind: TrackKind,
    pub codecs: String,
    /// Peak segment bit rate (bits/s).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<(u16, u16)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Video only: SDR, PQ or HLG, from the source's colour information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<VideoRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// E-AC-3 with Dolby Atmos: the JOC complexity index (`CHANNELS="16/JOC"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joc_complexity: Option<u8>,
    /// Dolby Vision over a compatible base layer: `SUPPLEMENTAL-CODECS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_codecs: Option<String>,
    pub duration: f64,
    pub segment_count: usize,
    /// Key of the rendition's media playlist, relative to the title.
    pub playlist: String,
    /// Subtitles only: `FORCED=YES` (a `.forced` side file).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// Subtitles only: `CHARACTERISTICS` (SDH side files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characteristics: Option<String>,
}

/// Rate in bits/s of `bytes` over `secs`, rounded up; 0 for an empty span.
pub(crate) fn bit_rate(bytes: u64, secs: f64) -> u64 {
    if secs > 0.0 {
        (bytes as f64 * 8.0 / secs).ceil() as u64
    } else {
        0
    }
}

/// `base`, or `base_2`, `base_3`… when taken: rendition names are folder names and
/// `EXT-X-MEDIA` NAMEs, unique within a title (RFC 8216 § 4.3.4.1).
pub(crate) fn unique_name(taken: &mut Vec<String>, base: String) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.push(name.clone());
    name
}

/// A media playlist as a progressive publish grows it (`<dir>/event.m3u8`, beside the
/// rendition's VOD `index.m3u8`): each entry listed once the object it names is written,
/// `EXT-X-ENDLIST` at the end ([`hls::event_playlist`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GrowingPlaylist {
    /// `v/<version>/<rendition>/event.m3u8`.
    pub key: String,
    pub spec: hls::MediaPlaylistSpec,
    /// The key of the object each entry names, in order.
    pub segments: Vec<String>,
}

impl GrowingPlaylist {
    /// The growing playlist of the rendition in `dir` whose VOD playlist is `spec`.
    pub fn new(dir: &str, spec: hls::MediaPlaylistSpec) -> GrowingPlaylist {
        GrowingPlaylist {
            key: format!("{dir}/{EVENT_PLAYLIST}"),
            segments: spec
                .segments
                .iter()
                .map(|e| format!("{dir}/{}", e.uri))
                .collect(),
            spec,
        }
    }

    /// The playlist listing the first `upto` entries, with `EXT-X-ENDLIST` when `ended`;
    /// `target`: its target duration, when planned ahead of the whole spec.
    pub fn object(&self, upto: usize, ended: bool, target: Option<u64>) -> Object {
        let text = hls::event_playlist(&self.spec, upto, ended, target);
        Object {
            key: self.key.clone(),
            content_type: content_type::PLAYLIST,
            cache_control: cache_control::GROWING,
            body: Body::from_bytes(text.into_bytes()),
        }
    }

    /// The target duration (RFC 8216 § 4.3.3.1) of the first `upto` entries.
    pub fn target_duration(&self, upto: usize) -> u64 {
        let spec = hls::MediaPlaylistSpec {
            segments: self.spec.segments.iter().take(upto).cloned().collect(),
            ..self.spec.clone()
        };
        hls::target_duration(&spec)
    }

    /// Seconds of media in the first `upto` entries.
    pub fn seconds(&self, upto: usize) -> f64 {
        self.spec
            .segments
            .iter()
            .take(upto)
            .map(|e| e.duration)
            .sum()
    }
}

/// The file name of a rendition's growing playlist.
pub const EVENT_PLAYLIST: &str = "event.m3u8";
