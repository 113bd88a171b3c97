//! What a side file's name says: `ep1.en.srt` beside `ep1.mp4` is English subtitles for
//! title `ep1`; `My.Show.pt-BR.forced.vtt` forced Brazilian Portuguese for `My.Show`.
//! The language is the last dotted tag before the extension (after `forced`, `sdh` or
//! `cc`) when it is a well-formed BCP 47 tag (RFC 5646 § 2.1), else `und`.

/// A subtitle side file's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubtitleFormat {
    Srt,
    WebVtt,
}

/// A side file's name, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideFileName {
    /// The path without the extension and the tags: the video's path without its own
    /// extension (`shows/ep1`).
    pub stem: String,
    /// BCP 47 tag in its canonical case (`en`, `pt-BR`), or `und`.
    pub language: String,
    /// `forced`: shown when the viewer picked no subtitles (`FORCED=YES`).
    pub forced: bool,
    /// `sdh` or `cc`: written for the deaf and hard of hearing (`CHARACTERISTICS`).
    pub sdh: bool,
    pub format: SubtitleFormat,
}

/// Extensions of side files, matched ignoring ASCII case.
pub const EXTENSIONS: [&str; 2] = [".srt", ".vtt"];

impl SideFileName {
    /// Reads a path (`shows/ep1.en.srt`); `None` when it is not `.srt` or `.vtt`, or
    /// nothing is left of the name once the tags are taken.
    pub fn parse(path: &str) -> Option<SideFileName> {
        let lower = path.to_ascii_lowercase();
        let format = if lower.ends_with(".srt") {
            SubtitleFormat::Srt
        } else if lower.ends_with(".vtt") {
            SubtitleFormat::WebVtt
        } else {
            return None;
        };
        let mut stem = &path[..path.len() - 4];
        let folder_end = stem.rfind('/').map_or(0, |i| i + 1);
        let (mut forced, mut sdh, mut language) = (false, false, None);
        while let Some((rest, tag)) = last_tag(stem, folder_end) {
            match tag.to_ascii_lowercase().as_str() {
                "forced" if !forced => forced = true,
                "sdh" | "cc" if !sdh => sdh = true,
                _ => {
                    if let Some(tag) = canonical_bcp47(tag) {
                        language = Some(tag);
                        stem = rest;
                    }
                    break;
                }
            }
            stem = rest;
        }
        (stem.len() > folder_end).then(|| SideFileName {
            stem: stem.to_string(),
            language: language.unwrap_or_else(|| "und".into()),
            forced,
            sdh,
            format,
        })
    }
}

/// `("a/ep1", "en")` from `"a/ep1.en"`: only dots in the file name count.
fn last_tag(stem: &str, folder_end: usize) -> Option<(&str, &str)> {
    let dot = stem.rfind('.').filter(|&d| d >= folder_end)?;
    Some((&stem[..dot], &stem[dot + 1..]))
}

/// The tag in RFC 5646 § 2.1.1 case (language lower, script title, region upper) when it
/// is well-formed (§ 2.1 `langtag` or `privateuse`). The primary language must be 2 or 3
/// letters (ISO 639): 4 is reserved and 5–8 is only for registered languages, so
/// `My.Episode.vtt` does not read `Episode` as one.
pub fn canonical_bcp47(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > 64 {
        return None;
    }
    let parts: Vec<&str> = tag.split('-').collect();
    let alpha = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
    };
    let alnum = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    if !alpha(parts[0], 2..=3) {
        return None;
    }
    let mut out = vec![parts[0].to_ascii_lowercase()];
    let mut i = 1;
    // extlang: up to three 3-letter subtags.
    while i < parts.len() && i <= 3 && alpha(parts[i], 3..=3) {
        out.push(parts[i].to_ascii_lowercase());
        i += 1;
    }
    if i < parts.len() && alpha(parts[i], 4..=4) {
        let s = parts[i].to_ascii_lowercase();
        out.push(s[..1].to_ascii_uppercase() + &s[1..]);
        i += 1;
    }
    if i < parts.len()
        && (alpha(parts[i], 2..=2)
            || (parts[i].len() == 3 && parts[i].bytes().all(|b| b.is_ascii_digit())))
    {
        out.push(parts[i].to_ascii_uppercase());
        i += 1;
    }
    // variants: 5–8 alphanumerics, or a digit and 3 alphanumerics.
    while i < parts.len()
        && (alnum(parts[i], 5..=8)
            || (alnum(parts[i], 4..=4) && parts[i].as_bytes()[0].is_ascii_digit()))
    {
        out.push(parts[i].to_ascii_lowercase());
        i += 1;
    }
    extensions_and_private_use(&parts[i..], &mut out)?;
    Some(out.join("-"))
}

/// `extension = singleton 1*("-" (2*8alphanum))`, then `privateuse = "x" 1*("-" (1*8alphanum))`.
fn extensions_and_private_use(parts: &[&str], out: &mut Vec<String>) -> Option<()> {
    let alnum = |s: &str, lo: usize| {
        (lo..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let mut i = 0;
    while i < parts.len() {
        let singleton = parts[i].to_ascii_lowercase();
        if singleton.len() != 1 || !alnum(&singleton, 1) {
            return None;
        }
        let lo = if singleton == "x" { 1 } else { 2 };
        let start = i + 1;
        let mut end = start;
        while end < parts.len() && alnum(parts[end], lo) && (lo == 1 || parts[end].len() > 1) {
            end += 1;
        }
        if end == start {
            return None;
        }
        out.push(singleton.clone());
        out.extend(parts[start..end].iter().map(|p| p.to_ascii_lowercase()));
        i = end;
        if singleton == "x" && i < parts.len() {
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> (String, String, bool, bool) {
        let n = SideFileName::parse(path).unwrap();
        (n.stem, n.language, n.forced, n.sdh)
    }

    #[test]
    fn language_is_the_last_tag() {
        assert_eq!(
            read("ep1.en.srt"),
            ("ep1".into(), "en".into(), false, false)
        );
        assert_eq!(
            read("My.Show.en.vtt"),
            ("My.Show".into(), "en".into(), false, false)
        );
        assert_eq!(
            read("a/ep1.pt-br.SRT"),
            ("a/ep1".into(), "pt-BR".into(), false, false)
        );
        assert_eq!(read("ep1.zh-hant-tw.vtt").1, "zh-Hant-TW");
        assert_eq!(read("ep1.es-419.vtt").1, "es-419");
    }

    #[test]
    fn no_language_is_und() {
        assert_eq!(read("ep1.srt"), ("ep1".into(), "und".into(), false, false));
        assert_eq!(
            read("My.Episode.vtt"),
            ("My.Episode".into(), "und".into(), false, false)
        );
        assert_eq!(
            read("v1.2.vtt"),
            ("v1.2".into(), "und".into(), false, false)
        );
    }

    #[test]
    fn forced_and_sdh_tags() {
        assert_eq!(
            read("ep1.en.forced.srt"),
            ("ep1".into(), "en".into(), true, false)
        );
        assert_eq!(
            read("ep1.fr.sdh.vtt"),
            ("ep1".into(), "fr".into(), false, true)
        );
        assert_eq!(
            read("ep1.de.cc.forced.vtt"),
            ("ep1".into(), "de".into(), true, true)
        );
        assert_eq!(
            read("ep1.forced.srt"),
            ("ep1".into(), "und".into(), true, false)
        );
    }

    #[test]
    fn not_side_files() {
        assert_eq!(SideFileName::parse("ep1.mp4"), None);
        assert_eq!(SideFileName::parse(".srt"), None);
        assert_eq!(SideFileName::parse("a.b/.en.srt"), None);
        // A video named `en` may have a side file of its own.
        assert_eq!(
            read("a.b/en.srt"),
            ("a.b/en".into(), "und".into(), false, false)
        );
    }

    #[test]
    fn bcp47_well_formedness() {
        for good in [
            "en",
            "pt-BR",
            "sr-Latn-RS",
            "de-CH-1996",
            "en-x-test",
            "zh-yue-HK",
        ] {
            assert!(canonical_bcp47(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "e",
            "engl",
            "en-",
            "en--us",
            "en-x",
            "12",
            "en-a",
            "en_US",
            "fr-x-a-b1-zzzzzzzzz",
        ] {
            assert_eq!(canonical_bcp47(bad), None, "{bad}");
        }
    }
}
