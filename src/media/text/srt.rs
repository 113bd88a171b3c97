//! SubRip (`.srt`) side files: numbered blocks of `HH:MM:SS,mmm --> HH:MM:SS,mmm` and
//! text. Read as UTF-8 (a byte order mark is skipped); a file that is not UTF-8 is read
//! as Windows-1252, the encoding most legacy SRT files use, with a warning.

use super::{blocks, finish, join_non_blank, lines, timestamp, Cue, Subtitles, TextError};
use super::{MAX_FILE_BYTES, MAX_LINE_BYTES};

/// Parses an SRT file into cues with WebVTT cue text.
pub fn parse(bytes: &[u8]) -> Result<Subtitles, TextError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(bytes.len()));
    }
    let (text, warnings) = decode(bytes);
    let lines = lines(&text)?;
    let mut cues = Vec::new();
    for (first, block) in blocks(&lines) {
        cues.push(parse_block(first, &block)?);
        if cues.len() > super::MAX_CUES {
            return Err(TextError::TooManyCues);
        }
    }
    Ok(Subtitles {
        cues: finish(cues)?,
        preamble: Vec::new(),
        warnings,
    })
}

/// UTF-8 with or without BOM; otherwise Windows-1252, with a warning.
fn decode(bytes: &[u8]) -> (String, Vec<String>) {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), Vec::new()),
        Err(e) => (
            windows_1252(body),
            vec![format!(
                "not UTF-8 (byte {} is invalid): read as Windows-1252",
                e.valid_up_to()
            )],
        ),
    }
}

/// Windows-1252 (WHATWG Encoding "windows-1252" index): Latin-1 except 0x80–0x9F.
fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// One block: an optional counter line, the timing line, then text lines.
fn parse_block(first: usize, block: &[&str]) -> Result<Cue, TextError> {
    let timing_at = usize::from(!block[0].contains("-->"));
    let line = first + timing_at;
    let timing = block.get(timing_at).ok_or_else(|| TextError::Syntax {
        line: first,
        reason: format!(
            "'{}' is not a subtitle block (no timing line)",
            clip(block[0])
        ),
    })?;
    let (start_ms, end_ms) = parse_timing(timing).ok_or_else(|| TextError::Syntax {
        line,
        reason: format!("'{}' is not 'HH:MM:SS,mmm --> HH:MM:SS,mmm'", clip(timing)),
    })?;
    let text = block[timing_at + 1..]
        .iter()
        .map(|l| srt_line_to_vtt(l))
        .collect::<Vec<_>>();
    Ok(Cue {
        start_ms,
        end_ms,
        id: None,
        settings: None,
        text: join_non_blank(text.iter().map(String::as_str)),
    })
}

/// `start --> end`, ignoring SRT's optional `X1:… Y2:…` position after the end time.
fn parse_timing(line: &str) -> Option<(u64, u64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    let start = timestamp::parse(start.trim(), &[',', '.'], false)?;
    let end = timestamp::parse(end, &[',', '.'], false)?;
    (end >= start).then_some((start, end))
}

/// The first 40 characters of a line, for messages.
fn clip(line: &str) -> String {
    line.chars().take(40).collect()
}

/// SRT text as WebVTT cue text: `<i> <b> <u>` and their end tags are kept (WebVTT has
/// them), `<font …>` and other tags are dropped, `&` that does not start an entity and
/// `<` that does not start a kept tag are escaped, `-->` is broken (W3C WebVTT § 4.2.2).
fn srt_line_to_vtt(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LINE_BYTES));
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(end) = rest.find('>') {
                let tag = &rest[..=end];
                if is_simple_tag(tag) {
                    out.push_str(&tag.to_ascii_lowercase());
                    rest = &rest[end + 1..];
                    continue;
                }
                if is_html_like(tag) {
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            out.push_str("&lt;");
        } else if c == '&' {
            out.push_str(if starts_entity(rest) { "&" } else { "&amp;" });
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.replace("-->", "--&gt;")
}

fn is_simple_tag(tag: &str) -> bool {
    matches!(
        tag.to_ascii_lowercase().as_str(),
        "<i>" | "</i>" | "<b>" | "</b>" | "<u>" | "</u>"
    )
}

/// `<font color="…">`, `</font>` and the like: a letter (or `/` and a letter) after `<`.
fn is_html_like(tag: &str) -> bool {
    let inner = tag[1..].trim_start_matches('/');
    inner
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
}

fn starts_entity(text: &str) -> bool {
    ["&amp;", "&lt;", "&gt;", "&nbsp;", "&lrm;", "&rlm;"]
        .iter()
        .any(|e| text.starts_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello <i>there</i>\r\n\r\n\
                          2\r\n00:00:03,000 --> 00:00:04,000\r\n<font color=\"red\">A & B</font>\r\nline 2\r\n";

    #[test]
    fn reads_blocks_and_converts_tags() {
        let s = parse(SAMPLE.as_bytes()).unwrap();
        assert!(s.warnings.is_empty());
        assert_eq!(s.cues.len(), 2);
        assert_eq!((s.cues[0].start_ms, s.cues[0].end_ms), (1000, 2500));
        assert_eq!(s.cues[0].text, "Hello <i>there</i>");
        assert_eq!(s.cues[1].text, "A &amp; B\nline 2");
    }

    #[test]
    fn bom_is_skipped() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(SAMPLE.as_bytes());
        let s = parse(&bytes).unwrap();
        assert_eq!(s.cues.len(), 2);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn windows_1252_fallback_warns() {
        let bytes = b"1\n00:00:01,000 --> 00:00:02,000\nCaf\xE9 \x93ok\x94 \x80\n";
        let s = parse(bytes).unwrap();
        assert_eq!(s.cues[0].text, "Café \u{201C}ok\u{201D} €");
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("Windows-1252"), "{:?}", s.warnings);
    }

    #[test]
    fn malformed_timing_names_the_line() {
        let err = parse(b"1\n00:00:01 --> 00:00:02,000\nx\n").unwrap_err();
        assert!(matches!(err, TextError::Syntax { line: 2, .. }), "{err}");
        let err = parse(b"1\nno timing here\n").unwrap_err();
        assert!(matches!(err, TextError::Syntax { line: 2, .. }), "{err}");
        let err = parse(b"this is not SRT\n").unwrap_err();
        assert!(matches!(err, TextError::Syntax { line: 1, .. }), "{err}");
        let err = parse(b"00:00:02,000 --> 00:00:01,000\nbackwards\n").unwrap_err();
        assert!(matches!(err, TextError::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn hostile_sizes_are_refused() {
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert_eq!(parse(&big), Err(TextError::TooLarge(MAX_FILE_BYTES + 1)));
    }

    #[test]
    fn empty_file_has_no_cues() {
        assert!(parse(b"").unwrap().cues.is_empty());
        assert!(parse(b"\n\n  \n").unwrap().cues.is_empty());
    }

    #[test]
    fn arrow_in_text_cannot_start_a_cue() {
        let s = parse(b"00:00:01,000 --> 00:00:02,000\na --> b <3\n").unwrap();
        assert_eq!(s.cues[0].text, "a --&gt; b &lt;3");
    }
}
