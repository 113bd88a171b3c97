//! Cue timestamps: SRT's `HH:MM:SS,mmm` and WebVTT's `[HH:]MM:SS.mmm` (W3C WebVTT
//! § 4.2.1 "WebVTT timestamp"), read into milliseconds and written back.

/// Largest hour value accepted: far beyond any real title, small enough that no
/// arithmetic on the result can overflow.
const MAX_HOURS: u64 = 100_000;

/// Reads a timestamp. `separator` is the character before the milliseconds (`,` for
/// SRT, `.` for WebVTT; SRT files written by some tools use `.`, so SRT accepts both).
/// Hours are optional only when `hours_optional`.
pub fn parse(text: &str, separators: &[char], hours_optional: bool) -> Option<u64> {
    let (clock, millis) = text.split_once(|c| separators.contains(&c))?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (number(h, 1, 6)?, number(m, 2, 2)?, number(s, 2, 2)?),
        [m, s] if hours_optional => (0, number(m, 2, 2)?, number(s, 2, 2)?),
        _ => return None,
    };
    if h > MAX_HOURS || m > 59 || s > 59 {
        return None;
    }
    let ms: u64 = millis.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// Digits only, `min..=max` of them.
fn number(text: &str, min: usize, max: usize) -> Option<u64> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A WebVTT timestamp with hours: `01:02:03.004`.
pub fn format(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_srt_and_webvtt_forms() {
        assert_eq!(parse("01:02:03,004", &[',', '.'], false), Some(3_723_004));
        assert_eq!(parse("02:03.004", &['.'], true), Some(123_004));
        assert_eq!(parse("123:00:00.000", &['.'], true), Some(442_800_000));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "02:03,004",
            "1:2:3,004",
            "00:60:00,000",
            "00:00:00,00",
            "00:00:00,0000",
            "aa:00:00,000",
            "99999999:00:00,000",
            "",
        ] {
            assert_eq!(parse(bad, &[','], false), None, "{bad}");
        }
    }

    #[test]
    fn writes_with_hours() {
        assert_eq!(format(3_723_004), "01:02:03.004");
        assert_eq!(format(0), "00:00:00.000");
    }
}
