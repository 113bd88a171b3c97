//! Which renditions a ladder has: `off`, `auto` (from the source's displayed size and bit
//! rate) or an explicit list (`1080p:6000k,720p:3000k,360p:800k`).
//!
//! `auto` takes one rung per size step of the H.264 table of Apple's HLS authoring
//! specification for Apple devices (2.4, "Video average bit rate"): 234p at 145 kb/s, 360p at
//! 365 kb/s, 540p at 2,000 kb/s, 720p at 3,000 kb/s and 1080p at 6,000 kb/s (432p is left
//! out: it sits between 360p and 540p in size and adds little). No rung is larger than the
//! source as displayed, nor above the source's bit rate; a portrait source gets the same
//! rungs turned (a "1080p" rung of a 1080x1920 phone video is 1080 wide). When the source
//! itself stays the top rung (`--keep-source on`), rungs of its size or larger are left out.

use crate::error::{Error, Result};

/// One rendition to encode: the short side of the picture in pixels ("720p" is 720) and the
/// average bit rate the encoder aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Rung {
    pub lines: u32,
    pub kbps: u32,
}

/// What `--ladder` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ladder {
    Off,
    Auto,
    Rungs(Vec<Rung>),
}

/// The size steps of `auto` (Apple's H.264 table, one entry per size).
pub const AUTO_RUNGS: [Rung; 5] = [
    Rung {
        lines: 234,
        kbps: 145,
    },
    Rung {
        lines: 360,
        kbps: 365,
    },
    Rung {
        lines: 540,
        kbps: 2_000,
    },
    Rung {
        lines: 720,
        kbps: 3_000,
    },
    Rung {
        lines: 1_080,
        kbps: 6_000,
    },
];

/// The most rungs a ladder may have, and their bounds: a typo must not start an encode of
/// 40 renditions or of a 100,000-line picture.
const MAX_RUNGS: usize = 8;
const LINES: std::ops::RangeInclusive<u32> = 90..=4_320;
const KBPS: std::ops::RangeInclusive<u32> = 50..=100_000;

impl Ladder {
    /// `off`, `auto`, or rungs `LINESp:RATE` separated by commas, where RATE is kilobits
    /// (`800k`) or megabits (`6M`, `2.5M`) per second.
    pub fn parse(text: &str) -> Result<Ladder> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "off" | "" => return Ok(Ladder::Off),
            "auto" => return Ok(Ladder::Auto),
            _ => {}
        }
        let mut rungs = Vec::new();
        for part in text.split(',').map(str::trim) {
            rungs.push(parse_rung(part)?);
        }
        if rungs.len() > MAX_RUNGS {
            return Err(bad(text, "at most 8 rungs"));
        }
        rungs.sort_unstable();
        if rungs.windows(2).any(|w| w[0].lines == w[1].lines) {
            return Err(bad(text, "two rungs of one size"));
        }
        Ok(Ladder::Rungs(rungs))
    }

    pub fn is_on(&self) -> bool {
        *self != Ladder::Off
    }

    /// The rungs to encode for a source of `source` as displayed, at `source_kbps` (0 when
    /// unknown), smallest first. `keep_source`: the source is the top rung already.
    pub fn rungs_for(&self, source: (u32, u32), source_kbps: u32, keep_source: bool) -> Vec<Rung> {
        let wanted: &[Rung] = match self {
            Ladder::Off => return Vec::new(),
            Ladder::Auto => &AUTO_RUNGS,
            Ladder::Rungs(r) => r,
        };
        let short = source.0.min(source.1);
        let cap = |kbps: u32| {
            if source_kbps > 0 {
                kbps.min(source_kbps)
            } else {
                kbps
            }
        };
        let mut out: Vec<Rung> = Vec::new();
        for r in wanted {
            if r.lines > short || (keep_source && r.lines >= short) {
                continue;
            }
            let rung = Rung {
                lines: r.lines,
                kbps: cap(r.kbps),
            };
            // A rung no richer than the one below it only costs encoding time.
            if out.last().is_some_and(|below| below.kbps >= rung.kbps) {
                continue;
            }
            out.push(rung);
        }
        if out.is_empty() && !keep_source && short >= 2 {
            // A source smaller than every rung: one rendition at its own size.
            let kbps = wanted.first().map_or(AUTO_RUNGS[0].kbps, |r| r.kbps);
            out.push(Rung {
                lines: short - short % 2,
                kbps: cap(kbps),
            });
        }
        out
    }
}

/// [`Ladder::parse`], for command-line parsers.
impl std::str::FromStr for Ladder {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Ladder, String> {
        Ladder::parse(text).map_err(|e| e.to_string())
    }
}

impl std::fmt::Display for Ladder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ladder::Off => f.write_str("off"),
            Ladder::Auto => f.write_str("auto"),
            Ladder::Rungs(rungs) => {
                let parts: Vec<String> = rungs.iter().rev().map(Rung::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl std::fmt::Display for Rung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}p:{}k", self.lines, self.kbps)
    }
}

impl Rung {
    /// The rung's picture for a source displayed at `source` (width, height): the short side
    /// is `lines`, the long side keeps the source's aspect ratio; both even, as 4:2:0 needs.
    pub fn size_for(&self, source: (u32, u32)) -> (u32, u32) {
        let (w, h) = (source.0.max(1), source.1.max(1));
        let even = |x: f64| ((x / 2.0).round() as u32).max(1) * 2;
        if w >= h {
            (
                even(f64::from(self.lines) * f64::from(w) / f64::from(h)),
                even(f64::from(self.lines)),
            )
        } else {
            (
                even(f64::from(self.lines)),
                even(f64::from(self.lines) * f64::from(h) / f64::from(w)),
            )
        }
    }
}

fn parse_rung(part: &str) -> Result<Rung> {
    let (size, rate) = part
        .split_once(':')
        .ok_or_else(|| bad(part, "a rung is LINESp:RATE, e.g. 720p:3000k"))?;
    let lines: u32 = size
        .trim()
        .strip_suffix(['p', 'P'])
        .and_then(|n| n.parse().ok())
        .filter(|n| LINES.contains(n))
        .ok_or_else(|| bad(part, "the size is 90p to 4320p, e.g. 720p"))?;
    let rate = rate.trim();
    let kbps = if let Some(k) = rate.strip_suffix(['k', 'K']) {
        k.parse::<f64>().ok()
    } else if let Some(m) = rate.strip_suffix('M') {
        m.parse::<f64>().ok().map(|m| m * 1000.0)
    } else {
        None
    }
    .filter(|k| k.is_finite())
    .map(|k| k.round() as u32)
    .filter(|k| KBPS.contains(k))
    .ok_or_else(|| bad(part, "the rate is 50k to 100M, e.g. 3000k or 3M"))?;
    if !lines.is_multiple_of(2) {
        return Err(bad(part, "the size must be even (4:2:0 video)"));
    }
    Ok(Rung { lines, kbps })
}

fn bad(what: &str, why: &str) -> Error {
    Error::Settings(format!("ladder '{what}': {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lines: u32, kbps: u32) -> Rung {
        Rung { lines, kbps }
    }

    #[test]
    fn parses_what_users_write() {
        assert_eq!(Ladder::parse("off").unwrap(), Ladder::Off);
        assert_eq!(Ladder::parse(" AUTO ").unwrap(), Ladder::Auto);
        assert_eq!(
            Ladder::parse("1080p:6000k, 720p:3M,360p:800K").unwrap(),
            Ladder::Rungs(vec![r(360, 800), r(720, 3000), r(1080, 6000)])
        );
        assert_eq!(
            Ladder::parse("540p:2.5M").unwrap(),
            Ladder::Rungs(vec![r(540, 2500)])
        );
        for bad in [
            "720",
            "720p",
            "720p:",
            "720p:3000",
            "abcp:1k",
            "721p:1M",
            "720p:0k",
            "720p:1000M",
            "720p:1k,720p:2k",
            "99999p:1M",
            "720p:NaNk",
            "720p:infk",
        ] {
            assert!(Ladder::parse(bad).is_err(), "{bad}");
        }
        let nine = ["720p:1M"; 9].join(",");
        assert!(Ladder::parse(&nine).is_err());
        assert_eq!(
            Ladder::parse("1080p:6000k,360p:800k").unwrap().to_string(),
            "1080p:6000k,360p:800k"
        );
    }

    #[test]
    fn auto_for_a_1080p_source_is_five_rungs() {
        let rungs = Ladder::Auto.rungs_for((1920, 1080), 20_000, false);
        assert_eq!(rungs, AUTO_RUNGS.to_vec());
        // Kept as the top rung, the source replaces the 1080p one.
        let kept = Ladder::Auto.rungs_for((1920, 1080), 20_000, true);
        assert_eq!(kept, AUTO_RUNGS[..4].to_vec());
    }

    #[test]
    fn auto_never_upscales_nor_exceeds_the_source_rate() {
        assert_eq!(
            Ladder::Auto.rungs_for((1280, 720), 2_500, false),
            vec![r(234, 145), r(360, 365), r(540, 2000), r(720, 2500)]
        );
        // A 1,000 kb/s 1080p source: 540p and up would all be 1,000 kb/s; one is enough.
        assert_eq!(
            Ladder::Auto.rungs_for((1920, 1080), 1_000, false),
            vec![r(234, 145), r(360, 365), r(540, 1000)]
        );
        // Smaller than every rung: one rendition at its own size.
        assert_eq!(
            Ladder::Auto.rungs_for((320, 181), 300, false),
            vec![r(180, 145)]
        );
        assert!(Ladder::Auto.rungs_for((320, 180), 300, true).is_empty());
        assert!(Ladder::Off.rungs_for((1920, 1080), 0, false).is_empty());
    }

    #[test]
    fn portrait_sources_get_turned_rungs() {
        let rungs = Ladder::Auto.rungs_for((1080, 1920), 0, false);
        assert_eq!(rungs.len(), 5);
        assert_eq!(r(720, 3000).size_for((1080, 1920)), (720, 1280));
        assert_eq!(r(720, 3000).size_for((1920, 1080)), (1280, 720));
        assert_eq!(r(234, 145).size_for((1920, 1080)), (416, 234));
        assert_eq!(r(360, 365).size_for((1440, 1080)), (480, 360));
    }
}
