//! WebVTT side files (W3C WebVTT § 4.1, parsed as § 6.1 describes, bounded): the
//! `WEBVTT` header, then blocks. `NOTE` comments are dropped, `STYLE` and `REGION`
//! blocks kept for every segment's header, cues kept with their identifiers, settings
//! and text as given.

use super::{blocks, finish, lines, timestamp, Cue, Subtitles, TextError, MAX_FILE_BYTES};

/// Parses a WebVTT file.
pub fn parse(bytes: &[u8]) -> Result<Subtitles, TextError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(bytes.len()));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // W3C WebVTT § 4.1: a WebVTT file is UTF-8.
    let text = std::str::from_utf8(body).map_err(|e| TextError::Syntax {
        line: 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        reason: "not UTF-8 (WebVTT files are UTF-8)".into(),
    })?;
    let lines = lines(text)?;
    check_signature(lines.first().copied())?;
    let mut out = Subtitles::default();
    // The header block (signature and header lines) is the first block.
    for (first, block) in blocks(&lines).into_iter().skip(1) {
        match block_kind(block[0]) {
            BlockKind::Note => {}
            // W3C WebVTT § 4.1: a STYLE or REGION block never holds "-->".
            BlockKind::Preamble if block.iter().any(|l| l.contains("-->")) => out.warnings.push(
                format!("line {first}: a STYLE or REGION block holding '-->' is ignored"),
            ),
            BlockKind::Preamble if out.cues.is_empty() => out.preamble.push(block.join("\n")),
            BlockKind::Preamble => out.warnings.push(format!(
                "line {first}: a STYLE or REGION block after the first cue is ignored"
            )),
            BlockKind::Cue => {
                out.cues.push(parse_cue(first, &block)?);
                if out.cues.len() > super::MAX_CUES {
                    return Err(TextError::TooManyCues);
                }
            }
        }
    }
    out.cues = finish(out.cues)?;
    Ok(out)
}

/// `WEBVTT`, alone or followed by a space or tab and anything.
fn check_signature(first: Option<&str>) -> Result<(), TextError> {
    match first.and_then(|l| l.strip_prefix("WEBVTT")) {
        Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => Ok(()),
        _ => Err(TextError::NotWebVtt),
    }
}

enum BlockKind {
    Note,
    Preamble,
    Cue,
}

fn block_kind(first_line: &str) -> BlockKind {
    let keyword = |k: &str| {
        first_line
            .strip_prefix(k)
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
    };
    if first_line.contains("-->") {
        BlockKind::Cue
    } else if keyword("NOTE") {
        BlockKind::Note
    } else if keyword("STYLE") || keyword("REGION") {
        BlockKind::Preamble
    } else {
        BlockKind::Cue
    }
}

/// An optional identifier line, the timing line with optional settings, then text.
fn parse_cue(first: usize, block: &[&str]) -> Result<Cue, TextError> {
    let timing_at = usize::from(!block[0].contains("-->"));
    let line = first + timing_at;
    let syntax = |reason: String| TextError::Syntax { line, reason };
    let timing = block
        .get(timing_at)
        .ok_or_else(|| syntax("a cue identifier without a timing line".into()))?;
    let (start, rest) = timing
        .split_once("-->")
        .ok_or_else(|| syntax("a cue identifier without a timing line".into()))?;
    let mut rest = rest.split_whitespace();
    let end = rest.next().unwrap_or("");
    let bad_time = |t: &str| syntax(format!("'{t}' is not a WebVTT timestamp"));
    let start_ms =
        timestamp::parse(start.trim(), &['.'], true).ok_or_else(|| bad_time(start.trim()))?;
    let end_ms = timestamp::parse(end, &['.'], true).ok_or_else(|| bad_time(end))?;
    if end_ms < start_ms {
        return Err(syntax("the cue ends before it starts".into()));
    }
    let settings = rest.collect::<Vec<_>>().join(" ");
    Ok(Cue {
        start_ms,
        end_ms,
        id: (timing_at == 1).then(|| block[0].to_string()),
        settings: (!settings.is_empty()).then_some(settings),
        // Cue text lines never contain "-->" (§ 4.1): such a line ends the cue.
        text: block[timing_at + 1..]
            .iter()
            .take_while(|l| !l.contains("-->"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_blocks_and_cues() {
        let text = "\u{FEFF}WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning\n\n\
                    STYLE\n::cue { color: yellow }\n\nintro\n00:01.000 --> 00:02.000 line:0 align:start\n\
                    <v Bob>Hi</v> &amp; bye\n\n00:00:00.500 --> 00:00:00.900\nfirst\n";
        let s = parse(text.as_bytes()).unwrap();
        assert_eq!(
            s.preamble,
            vec!["STYLE\n::cue { color: yellow }".to_string()]
        );
        assert_eq!(s.cues.len(), 2);
        assert_eq!(s.cues[0].text, "first");
        assert_eq!(s.cues[1].id.as_deref(), Some("intro"));
        assert_eq!(s.cues[1].settings.as_deref(), Some("line:0 align:start"));
        assert_eq!(s.cues[1].text, "<v Bob>Hi</v> &amp; bye");
        assert_eq!((s.cues[1].start_ms, s.cues[1].end_ms), (1000, 2000));
    }

    #[test]
    fn refuses_what_is_not_webvtt() {
        assert_eq!(
            parse(b"1\n00:00:01,000 --> 00:00:02,000\n"),
            Err(TextError::NotWebVtt)
        );
        assert_eq!(parse(b"WEBVTTX\n"), Err(TextError::NotWebVtt));
        assert_eq!(parse(b""), Err(TextError::NotWebVtt));
        assert!(parse(b"WEBVTT\n\n00:01.000 --> 00:02.0\nx\n").is_err());
        assert!(parse(b"WEBVTT\n\nid only\n").is_err());
        assert!(parse(b"WEBVTT\n\n\xff\n").is_err());
    }

    #[test]
    fn header_only_file_has_no_cues() {
        assert!(parse(b"WEBVTT").unwrap().cues.is_empty());
    }
}
