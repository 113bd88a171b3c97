//! What ffprobe says of a source the demuxer cannot make a video track of (MPEG-4 Part 2,
//! ProRes, MJPEG, …): its picture as displayed, its bit rate, and its sound. The transcoding
//! stage then encodes every rung (the source cannot be the top rung) and the audio.

use crate::error::{Error, Result, RetryClass};
use serde::Deserialize;
use std::path::Path;
use std::process::{Command, Stdio};

/// The source's facts a ladder needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    /// Width and height as displayed (rotation and pixel aspect ratio applied).
    pub display: (u32, u32),
    /// The whole file's bit rate, kb/s (0 when unknown).
    pub kbps: u32,
    pub has_audio: bool,
    pub audio_is_aac: bool,
    /// The first audio stream's channel count (0 without audio).
    pub audio_channels: u32,
    /// The video codec's name, as ffprobe gives it (`mpeg4`, `prores`).
    pub video_codec: String,
    /// Seconds (0 when unknown).
    pub duration: f64,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    #[serde(default)]
    format: Format,
}

#[derive(Deserialize, Default)]
struct Format {
    bit_rate: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    channels: Option<u32>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Tags {
    rotate: Option<String>,
}

/// Runs `ffprobe` on `input` (a path or URL ffmpeg reads).
pub fn probe(ffprobe: &Path, input: &str) -> Result<Probed> {
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-print_format", "json", "-show_entries"])
        .arg(
            "stream=codec_type,codec_name,width,height,sample_aspect_ratio,channels:\
             stream_side_data=rotation:stream_tags=rotate:format=bit_rate,duration",
        )
        .arg(input)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Transcode {
            reason: format!("cannot run {}: {e}", ffprobe.display()),
            class: RetryClass::Retryable,
        })?;
    if !out.status.success() {
        return Err(Error::Transcode {
            reason: format!(
                "ffprobe could not read the source: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            class: RetryClass::Permanent,
        });
    }
    parse(&out.stdout)
}

/// ffprobe's JSON answer, read.
pub fn parse(json: &[u8]) -> Result<Probed> {
    let o: Output = serde_json::from_slice(json).map_err(|e| Error::Transcode {
        reason: format!("ffprobe's answer: {e}"),
        class: RetryClass::Permanent,
    })?;
    let video = o
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.width.is_some())
        .ok_or_else(|| Error::NoUsableTrack("ffprobe finds no video stream in it".into()))?;
    let audio = o
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));
    let (w, h) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    let w = match video.sample_aspect_ratio.as_deref().and_then(ratio) {
        Some((num, den)) if num != den && den > 0 => {
            u32::try_from(u64::from(w) * u64::from(num) / u64::from(den)).unwrap_or(w)
        }
        _ => w,
    };
    let rotation = video
        .side_data_list
        .iter()
        .find_map(|s| s.rotation)
        .or_else(|| video.tags.rotate.as_deref().and_then(|r| r.parse().ok()))
        .unwrap_or(0.0);
    let quarter = (rotation.abs().round() as i64) % 180 == 90;
    Ok(Probed {
        display: if quarter { (h, w) } else { (w, h) },
        kbps: o
            .format
            .bit_rate
            .and_then(|b| b.parse::<u64>().ok())
            .map_or(0, |b| u32::try_from(b / 1000).unwrap_or(u32::MAX)),
        has_audio: audio.is_some(),
        audio_is_aac: audio.is_some_and(|a| a.codec_name.as_deref() == Some("aac")),
        audio_channels: audio.and_then(|a| a.channels).unwrap_or(0),
        video_codec: video.codec_name.clone().unwrap_or_default(),
        duration: o
            .format
            .duration
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
            .unwrap_or(0.0),
    })
}

fn ratio(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_ffprobe_says() {
        let mpeg4 = br#"{"streams":[{"codec_name":"mpeg4","codec_type":"video","width":320,"height":180,"sample_aspect_ratio":"1:1","tags":{}},{"codec_name":"aac","codec_type":"audio","tags":{}}],"format":{"duration":"2.000000","bit_rate":"448936"}}"#;
        let p = parse(mpeg4).unwrap();
        assert_eq!(p.display, (320, 180));
        assert_eq!(p.kbps, 448);
        assert!(p.has_audio && p.audio_is_aac);
        assert_eq!(p.video_codec, "mpeg4");
        let turned = br#"{"streams":[{"codec_name":"prores","codec_type":"video","width":1920,"height":1080,"side_data_list":[{"rotation":-90}]},{"codec_name":"pcm_s16le","codec_type":"audio"}],"format":{}}"#;
        let p = parse(turned).unwrap();
        assert_eq!(p.display, (1080, 1920));
        assert!(p.has_audio && !p.audio_is_aac);
        assert_eq!(p.kbps, 0);
        let anamorphic = br#"{"streams":[{"codec_type":"video","width":720,"height":576,"sample_aspect_ratio":"16:11"}]}"#;
        assert_eq!(parse(anamorphic).unwrap().display, (1047, 576));
        assert!(parse(br#"{"streams":[{"codec_type":"audio"}]}"#).is_err());
        assert!(parse(b"not json").is_err());
    }
}
