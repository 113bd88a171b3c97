//! The media model the demuxer produces and every writer consumes: tracks, their
//! codec configuration and their samples, with times already resolved (edit lists
//! applied, see [`Track::pts`] and [`crate::media::edit`]).

pub use crate::media::dovi::DoviConfig;

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
    /// Timed text (`tx3g` tracks, SRT and WebVTT side files), packaged as WebVTT.
    Subtitles,
}

/// The codec of a usable track, with the configuration record that the CODECS
/// attribute and the init segment are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264. `fourcc` is `avc1` (parameter sets in the sample entry) or `avc3`
    /// (in-band). `avcc` is the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 § 5.3.3.1).
    H264 { fourcc: [u8; 4], avcc: Vec<u8> },
    /// H.265. `fourcc` is `hvc1` or `hev1`, or for Dolby Vision profile 5 `dvh1` or
    /// `dvhe`. `hvcc` is the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 § 8.3.3.1);
    /// `dovi` the Dolby Vision configuration (`dvcC`/`dvvC`) when the entry has one
    /// (required in `dvh1`/`dvhe`; in `hvc1`/`hev1` it makes a profile 8 stream whose base
    /// layer any HEVC player shows).
    H265 {
        fourcc: [u8; 4],
        hvcc: Vec<u8>,
        dovi: Option<DoviConfig>,
    },
    /// VP9 in `vp09`; `vpcc` is the VPCodecConfigurationBox body (version and flags
    /// included).
    Vp9 { vpcc: Vec<u8> },
    /// AV1. `fourcc` is `av01`, or `dav1` for Dolby Vision profile 10 without a compatible
    /// base layer; `av1c` is the AV1CodecConfigurationRecord; `dovi` the Dolby Vision
    /// configuration (`dvvC`/`dvwC`, profile 10) when the entry has one (required in `dav1`).
    Av1 {
        fourcc: [u8; 4],
        av1c: Vec<u8>,
        dovi: Option<DoviConfig>,
    },
    /// AAC in `mp4a`. `asc` is the AudioSpecificConfig (ISO/IEC 14496-3 § 1.6.2.1)
    /// from the esds DecoderSpecificInfo.
    Aac { asc: Vec<u8> },
    /// Audio passed through with its own configuration box (header included: `dac3`,
    /// `dec3`, `esds`, `dOps`, `dfLa`, `alac`), written into the init segment's sample
    /// entry unchanged.
    Audio {
        format: AudioFormat,
        config: Vec<u8>,
    },
    /// 3GPP timed text (`tx3g`, ffmpeg's mov_text; 3GPP TS 26.245 § 5.16): each sample is
    /// one cue's text, turned into WebVTT by the packager.
    Tx3g,
}

/// Audio formats HLS carries in fMP4 besides AAC (Apple HLS authoring specification;
/// draft-pantos-hls-rfc8216bis § 3.1.2), each with the sample entry type ISO/IEC 14496-12
/// and its own specification give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// `ac-3` with `dac3` (ETSI TS 102 366 Annex F).
    Ac3,
    /// `ec-3` with `dec3` (ETSI TS 102 366 Annex F).
    Eac3,
    /// MPEG-1/2 Layer III in `mp4a` (objectTypeIndication 0x6B or 0x69).
    Mp3,
    /// `Opus` with `dOps` (Encapsulation of Opus in ISO Base Media File Format).
    Opus,
    /// `fLaC` with `dfLa` (FLAC in ISOBMFF).
    Flac,
    /// `alac` with its ALACSpecificConfig box.
    Alac,
}

impl AudioFormat {
    /// The sample entry type.
    pub fn entry(self) -> [u8; 4] {
        match self {
            AudioFormat::Ac3 => *b"ac-3",
            AudioFormat::Eac3 => *b"ec-3",
            AudioFormat::Mp3 => *b"mp4a",
            AudioFormat::Opus => *b"Opus",
            AudioFormat::Flac => *b"fLaC",
            AudioFormat::Alac => *b"alac",
        }
    }
}

impl Codec {
    pub fn kind(&self) -> TrackKind {
        match self {
            Codec::H264 { .. } | Codec::H265 { .. } | Codec::Vp9 { .. } | Codec::Av1 { .. } => {
                TrackKind::Video
            }
            Codec::Aac { .. } | Codec::Audio { .. } => TrackKind::Audio,
            Codec::Tx3g => TrackKind::Subtitles,
        }
    }
}

/// One access unit. Times are in the track's media timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Absolute byte offset in the source file.
    pub offset: u64,
    pub size: u32,
    /// Decode time, from `stts`, starting at 0 for the first sample.
    pub dts: u64,
    /// Duration from `stts`.
    pub duration: u32,
    /// Composition offset from `ctts` (signed: version 1 allows negative values).
    pub cts_offset: i32,
    /// A sync sample (`stss`, or every sample when there is no `stss`).
    pub sync: bool,
}

/// A usable track of one input file.
#[derive(Debug, Clone)]
pub struct Track {
    /// Index of the input file this track came from (a title may be several files).
    pub input: usize,
    /// `tkhd` track_ID in the source.
    pub id: u32,
    pub kind: TrackKind,
    pub codec: Codec,
    /// The source's sample entry box (header included), as read. The muxer copies it for
    /// video, so the decoder gets the same configuration, and writes its own for AAC
    /// (QuickTime sound descriptions do not belong in fMP4): demuxing only reads.
    pub sample_entry: Vec<u8>,
    /// `mdhd` timescale (ticks per second).
    pub timescale: u32,
    /// `mdhd` language, ISO 639-2/T (`eng`, `fra`); `und` when unset.
    pub language: String,
    /// Visual size from the sample entry (video only, else 0).
    pub width: u16,
    pub height: u16,
    /// `tkhd` transformation matrix, a b u c d v x y w (ISO/IEC 14496-12 § 8.3.2.3: 16.16
    /// fixed point, u v w 2.30), copied into the init segment so that players turn the
    /// picture as the source asks.
    pub matrix: [i32; 9],
    /// Transfer characteristics of the video from its `colr` box (ITU-T H.273 table 3),
    /// when the file says.
    pub transfer: Option<u16>,
    /// Audio channel count and sample rate (audio only, else 0).
    pub channels: u16,
    pub sample_rate: u32,
    /// Edit list, resolved: presentation time is dts plus cts_offset minus
    /// `media_start` plus `empty_delay`, all in the media timescale. `media_start` is
    /// the media time of the first edit that plays media; `empty_delay` the length of
    /// leading empty edits, converted to the media timescale (ISO/IEC 14496-12 § 8.6.6).
    pub media_start: i64,
    pub empty_delay: i64,
    /// Media time where the edit list ends presentation, when it ends before the media
    /// does. [`crate::media::edit::apply`] drops what follows and clears it.
    pub media_end: Option<i64>,
    /// Samples in decode order.
    pub samples: Vec<Sample>,
}

impl Track {
    /// Presentation time of a sample, in the media timescale.
    pub fn pts(&self, s: &Sample) -> i64 {
        // Saturating: a hostile `stts` can sum decode times past `i64::MAX`.
        i64::try_from(s.dts)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::from(s.cts_offset))
            .saturating_sub(self.media_start)
            .saturating_add(self.empty_delay)
    }

    /// The latest decode end of any sample (decode time plus duration; fragments can put
    /// decode times out of order), saturating.
    pub fn decode_end(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.dts.saturating_add(u64::from(s.duration)))
            .max()
            .unwrap_or(0)
    }

    /// Sum of all sample durations (media timescale).
    pub fn media_duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.media_duration() as f64 / f64::from(self.timescale.max(1))
    }

    /// Width and height as displayed: swapped when the matrix turns the picture a quarter
    /// (phones record portrait video as landscape samples with a 90° matrix).
    pub fn display_size(&self) -> (u16, u16) {
        if self.quarter_turn() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Whether the matrix turns the picture by 90° or 270°.
    pub fn quarter_turn(&self) -> bool {
        let [a, b, _, c, d, ..] = self.matrix;
        a == 0 && d == 0 && b != 0 && c != 0
    }

    /// The dynamic range a player must be able to show (`VIDEO-RANGE`,
    /// draft-pantos-hls-rfc8216bis § 4.4.6.2): PQ for transfer 16 (SMPTE ST 2084, HDR10 and
    /// Dolby Vision), HLG for 18 (ARIB STD-B67), SDR otherwise.
    pub fn video_range(&self) -> VideoRange {
        match self.transfer {
            Some(16) => VideoRange::Pq,
            Some(18) => VideoRange::Hlg,
            _ => VideoRange::Sdr,
        }
    }

    /// Frames per second from the average sample duration (video only).
    pub fn frame_rate(&self) -> Option<f64> {
        if self.kind != TrackKind::Video || self.samples.is_empty() {
            return None;
        }
        let d = self.media_duration();
        (d > 0).then(|| self.samples.len() as f64 * f64::from(self.timescale) / d as f64)
    }
}

/// `VIDEO-RANGE` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VideoRange {
    #[serde(rename = "SDR")]
    Sdr,
    #[serde(rename = "PQ")]
    Pq,
    #[serde(rename = "HLG")]
    Hlg,
}

impl VideoRange {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoRange::Sdr => "SDR",
            VideoRange::Pq => "PQ",
            VideoRange::Hlg => "HLG",
        }
    }
}

/// The largest time (in ticks of a track's timescale) a track may reach, decode time plus
/// duration and every offset: 2^53, exact in an `f64`, far from `i64` overflow in any sum
/// of two times, and still 3,000 years at 90 kHz. The demuxer refuses tracks beyond it.
pub const MAX_TICKS: u64 = 1 << 53;

/// The identity matrix of ISO/IEC 14496-12 § 8.3.2.3: no transformation.
pub const UNITY_MATRIX: [i32; 9] = [0x1_0000, 0, 0, 0, 0x1_0000, 0, 0, 0, 0x4000_0000];

/// One demuxed input file.
#[derive(Debug, Clone)]
pub struct Movie {
    /// Usable tracks (video and audio), in file order.
    pub tracks: Vec<Track>,
    /// Subtitle tracks (`tx3g`), in file order: apart from `tracks`, so that every video
    /// and audio path stays as it is.
    pub text_tracks: Vec<Track>,
    /// Tracks that were skipped, with the reason (text, unknown codec, no samples).
    pub skipped: Vec<SkippedTrack>,
    /// Tracks that are not media by design (timecode, chapters, timed metadata), with what
    /// each is: listed where every track is (the manifest), never warned about (DESIGN.md
    /// "Media rules": they are ignored).
    pub ignored: Vec<SkippedTrack>,
    /// What the user should know about how a track was read (an edit list honoured only
    /// in part).
    pub notes: Vec<String>,
    /// Hash of the moov box bytes and the file size: identifies the input's layout
    /// cheaply when no ETag is at hand (see `publish::version`).
    pub fingerprint: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTrack {
    pub id: u32,
    pub reason: String,
    /// A video or audio track whose codec hlspipe cannot carry: the title loses that
    /// picture or sound. `None` for tracks that are not media by design (timecode, text,
    /// chapters, cover art) or hold no samples.
    pub uncarried: Option<TrackKind>,
}
