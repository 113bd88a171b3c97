//! ffmpeg's command line for one run of the ladder's encode: the whole source, one chunk of
//! it, or (when the video is encoded in chunks) the rest: the sound and the previews.

use crate::transcode::ladder::Rung;
use crate::transcode::preview::{poster_filter, Thumbnails};
use std::ffi::OsString;
use std::path::PathBuf;

/// One file an encode makes.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: PathBuf,
    /// The rung it is, or `None` for the audio file.
    pub rung: Option<Rung>,
    /// Its picture size.
    pub size: Option<(u32, u32)>,
}

/// Where the rungs' IDR frames go.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyFrames {
    /// At these presentation times (seconds), and at the start.
    At(Vec<f64>),
    /// Every this many seconds.
    Every(f64),
}

impl KeyFrames {
    pub fn expression(&self) -> String {
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

/// The poster and the thumbnail sprite to make in a run.
#[derive(Debug, Clone)]
pub struct Shots {
    pub poster: PathBuf,
    pub sprite: PathBuf,
    pub thumbnails: Thumbnails,
    /// The title's duration and displayed size, for the poster's time and size.
    pub duration: f64,
    pub display: (u32, u32),
}

/// How a sound file is made from the source's first audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// AAC already, and the layout wanted: copied.
    Copy,
    /// Encoded to AAC-LC stereo (a surround source mixed down), 128 kb/s.
    Stereo,
    /// Encoded to AAC-LC 5.1, 384 kb/s: the surround source's own layout, kept beside
    /// the stereo one as a second rendition.
    Surround,
}

/// One ffmpeg run.
pub struct Run<'a> {
    pub input: &'a str,
    /// Decode only the key frames (the previews of a title whose video is encoded in chunks).
    pub key_frames_only: bool,
    /// The rungs, in the order of the filter graph's outputs.
    pub videos: Vec<Output>,
    pub keyframes: KeyFrames,
    pub audio: Vec<(Output, Sound)>,
    pub shots: Option<Shots>,
    pub preset: &'a str,
}

impl Run<'_> {
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty() && self.audio.is_empty() && self.shots.is_none()
    }

    pub fn arguments(&self) -> Vec<OsString> {
        let mut a = Args::default();
        a.push(&["-y", "-fflags", "+bitexact"]);
        if self.key_frames_only {
            a.push(&["-skip_frame:v", "nokey"]);
        }
        a.push(&["-i", self.input, "-map_metadata", "-1"]);
        let filters = self
            .shots
            .as_ref()
            .map(|s| (poster_filter(s.duration, s.display), s.thumbnails.filter()));
        if !self.videos.is_empty() || filters.is_some() {
            a.push(&[
                "-filter_complex",
                &filter_graph(&self.videos, filters.as_ref()),
            ]);
        }
        if let Some(s) = &self.shots {
            for (label, path) in [("[poster]", &s.poster), ("[thumbs]", &s.sprite)] {
                a.push(&["-map", label, "-frames:v", "1", "-update", "1"]);
                a.push(&["-c:v", "mjpeg", "-q:v", "4", "-flags:v", "+bitexact"]);
                a.push(&["-f", "image2"]);
                a.0.push(path.clone().into_os_string());
            }
        }
        let force = self.keyframes.expression();
        for (i, out) in self.videos.iter().enumerate() {
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
            a.push(&["-preset", self.preset, "-b:v", &format!("{kbps}k")]);
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
        for (out, sound) in &self.audio {
            a.push(&["-map", "0:a:0", "-vn", "-sn", "-dn"]);
            let (rate, channels) = match sound {
                Sound::Copy => {
                    a.push(&["-c:a", "copy"]);
                    ("", "")
                }
                Sound::Stereo => ("128k", "2"),
                Sound::Surround => ("384k", "6"),
            };
            if !rate.is_empty() {
                a.push(&["-c:a", "aac", "-b:a", rate, "-ac", channels]);
                a.push(&["-flags:a", "+bitexact"]);
            }
            a.push(&MP4_OUTPUT);
            a.0.push(out.path.clone().into_os_string());
        }
        a.0
    }
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
fn filter_graph(videos: &[Output], shots: Option<&(String, String)>) -> String {
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
        let rung = |lines, kbps| Some(Rung { lines, kbps });
        let outs = [
            Output {
                path: "a".into(),
                rung: rung(360, 365),
                size: Some((640, 360)),
            },
            Output {
                path: "b".into(),
                rung: rung(720, 3000),
                size: Some((1280, 720)),
            },
        ];
        assert_eq!(
            filter_graph(&outs, None),
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
