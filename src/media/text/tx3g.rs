//! 3GPP timed text samples (`tx3g`, ffmpeg's mov_text; 3GPP TS 26.245 § 5.17):
//! a 16-bit text length, the text (UTF-8, or UTF-16 with a byte order mark), then
//! modifier boxes (styles, highlights, karaoke), which are ignored here.

use super::{escape_plain, TextError, MAX_LINE_BYTES};

/// The text of one sample as WebVTT cue text, or `None` for an empty sample (TS 26.245
/// § 5.17.1.2: a sample with no text clears the display; it is a gap, not a cue).
pub fn sample_text(sample: &[u8]) -> Result<Option<String>, TextError> {
    let err = |reason: &str| TextError::Tx3g(reason.to_string());
    let len = match sample {
        [] => return Ok(None),
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        [_] => return Err(err("shorter than its 2-byte text length")),
    };
    if len > 4 * MAX_LINE_BYTES {
        return Err(err("text longer than the limit"));
    }
    let text = sample
        .get(2..2 + len)
        .ok_or_else(|| err("text length runs past the end of the sample"))?;
    let decoded = decode(text).ok_or_else(|| err("text is neither UTF-8 nor UTF-16"))?;
    let escaped = escape_plain(&decoded);
    Ok((!escaped.is_empty()).then_some(escaped))
}

fn decode(text: &[u8]) -> Option<String> {
    let utf16 = |bytes: &[u8], be: bool| {
        let units = bytes.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .ok()
    };
    match text {
        [0xFE, 0xFF, rest @ ..] if rest.len() % 2 == 0 => utf16(rest, true),
        [0xFF, 0xFE, rest @ ..] if rest.len() % 2 == 0 => utf16(rest, false),
        _ => std::str::from_utf8(text).ok().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &[u8], trailer: &[u8]) -> Vec<u8> {
        let mut s = (text.len() as u16).to_be_bytes().to_vec();
        s.extend_from_slice(text);
        s.extend_from_slice(trailer);
        s
    }

    #[test]
    fn utf8_text_with_style_box_ignored() {
        let styl = [0, 0, 0, 10, b's', b't', b'y', b'l', 0, 0];
        let s = sample("Hé <b>\nthere".as_bytes(), &styl);
        assert_eq!(
            sample_text(&s).unwrap().as_deref(),
            Some("Hé &lt;b>\nthere")
        );
    }

    #[test]
    fn utf16_with_bom() {
        let s = sample(&[0xFE, 0xFF, 0, b'H', 0, b'i'], &[]);
        assert_eq!(sample_text(&s).unwrap().as_deref(), Some("Hi"));
        let s = sample(&[0xFF, 0xFE, b'H', 0, b'i', 0], &[]);
        assert_eq!(sample_text(&s).unwrap().as_deref(), Some("Hi"));
    }

    #[test]
    fn empty_sample_is_no_cue() {
        assert_eq!(sample_text(&[]).unwrap(), None);
        assert_eq!(sample_text(&[0, 0]).unwrap(), None);
        assert_eq!(sample_text(&sample(b"\n", &[])).unwrap(), None);
    }

    #[test]
    fn malformed_samples_are_errors() {
        assert!(sample_text(&[0]).is_err());
        assert!(sample_text(&[0, 5, b'a']).is_err());
        assert!(sample_text(&sample(&[0xC3], &[])).is_err());
        assert!(sample_text(&sample(&[0xFE, 0xFF, 0xD8, 0x00], &[])).is_err());
    }
}
