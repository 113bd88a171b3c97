//! Timed text: subtitle cues from SRT and WebVTT side files and from `tx3g` (mov_text)
//! samples, and the segmented WebVTT that HLS subtitle renditions carry (RFC 8216
//! § 3.5). Pure: bytes in, cues and text out; every size read from the input is bounded.

pub mod segment;
pub mod side_file;
pub mod srt;
pub mod timestamp;
pub mod tx3g;
pub mod webvtt;

pub use segment::{segment_webvtt, VttSegment};
pub use side_file::{SideFileName, SubtitleFormat};

/// Largest subtitle file read (a feature film's SRT is about 100 KiB).
pub const MAX_FILE_BYTES: usize = 8 << 20;
/// Most cues in one subtitle track.
pub const MAX_CUES: usize = 200_000;
/// Longest line of a subtitle file.
pub const MAX_LINE_BYTES: usize = 16 << 10;

/// One cue: presentation times in milliseconds of the title's timeline, and its text as
/// WebVTT cue text (lines joined by `\n`, never a blank line, never `-->`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The WebVTT cue identifier, when the source had one.
    pub id: Option<String>,
    /// WebVTT cue settings (`line:0 align:start`), kept as given.
    pub settings: Option<String>,
    pub text: String,
}

/// A parsed subtitle track: its cues in start order, the WebVTT `STYLE` and `REGION`
/// blocks every segment repeats (W3C WebVTT § 4.1: they precede the first cue), and
/// what the reader had to guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subtitles {
    pub cues: Vec<Cue>,
    pub preamble: Vec<String>,
    pub warnings: Vec<String>,
}

/// Why a subtitle input cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} bytes is larger than the {MAX_FILE_BYTES}-byte limit for subtitles")]
    TooLarge(usize),
    #[error("more than {MAX_CUES} cues")]
    TooManyCues,
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("not a WebVTT file: the first line must be 'WEBVTT'")]
    NotWebVtt,
    #[error("tx3g sample: {0}")]
    Tx3g(String),
}

/// Splits text into lines (`\r\n`, `\r` or `\n`, W3C WebVTT § 6.1), numbered from 1,
/// refusing any longer than [`MAX_LINE_BYTES`].
pub(crate) fn lines(text: &str) -> Result<Vec<&str>, TextError> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let line = &rest[..end];
        if line.len() > MAX_LINE_BYTES {
            return Err(TextError::LineTooLong {
                line: out.len() + 1,
            });
        }
        out.push(line);
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\r'))
            .or_else(|| rest.strip_prefix('\n'))
            .unwrap_or(rest);
    }
    Ok(out)
}

/// Blocks of non-blank lines, each with the 1-based number of its first line.
pub(crate) fn blocks<'a>(lines: &[&'a str]) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut first = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push((first, std::mem::take(&mut current)));
            }
        } else {
            if current.is_empty() {
                first = i + 1;
            }
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push((first, current));
    }
    out
}

/// Plain text as WebVTT cue text (W3C WebVTT § 4.2.2): `&` and `<` escaped, `-->`
/// broken, blank lines dropped (a blank line would end the cue).
pub fn escape_plain(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace("-->", "--&gt;");
    join_non_blank(escaped.split(['\n', '\r']))
}

pub(crate) fn join_non_blank<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sorts cues by start time (stable: equal starts keep file order) and checks the count.
pub(crate) fn finish(mut cues: Vec<Cue>) -> Result<Vec<Cue>, TextError> {
    if cues.len() > MAX_CUES {
        return Err(TextError::TooManyCues);
    }
    cues.sort_by_key(|c| c.start_ms);
    Ok(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_every_line_ending() {
        assert_eq!(lines("a\r\nb\rc\nd").unwrap(), vec!["a", "b", "c", "d"]);
        assert_eq!(lines("a\n\nb\n").unwrap(), vec!["a", "", "b"]);
    }

    #[test]
    fn long_line_is_refused() {
        let text = format!("ok\n{}", "x".repeat(MAX_LINE_BYTES + 1));
        assert_eq!(lines(&text), Err(TextError::LineTooLong { line: 2 }));
    }

    /// What `fuzz/fuzz_targets/text.rs` does, on a fixed set of mutated inputs, in every
    /// test run: no reader or the segmenter may panic on any bytes.
    #[test]
    fn mutated_input_never_panics() {
        let seeds: [&[u8]; 4] = [
            b"1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hi</i> & <font x>\r\n\r\n",
            b"\xEF\xBB\xBFWEBVTT\n\nSTYLE\n::cue{}\n\nid\n00:01.000 --> 00:02.000 align:start\nx\n",
            b"\x00\x05Hello\x00\x00\x00\x0cstyl\x00\x00\x00\x00",
            b"ep1.pt-BR.forced.sdh.vtt",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            for _ in 0..2000 {
                let mut data = seed.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % (data.len() + 1);
                    match next() % 3 {
                        0 if at < data.len() => data[at] = next() as u8,
                        1 => data.insert(at, next() as u8),
                        _ => data.truncate(at),
                    }
                }
                let _ = tx3g::sample_text(&data);
                let _ = SideFileName::parse(&String::from_utf8_lossy(&data));
                for parsed in [srt::parse(&data), webvtt::parse(&data)]
                    .into_iter()
                    .flatten()
                {
                    for s in
                        segment_webvtt(&parsed.cues, &parsed.preamble, &[(0, 1500), (1500, 9000)])
                    {
                        assert!(s.text.starts_with("WEBVTT\n"));
                    }
                }
            }
        }
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(
            escape_plain("Tom & Jerry <3\n\n--> go"),
            "Tom &amp; Jerry &lt;3\n--&gt; go"
        );
    }
}
