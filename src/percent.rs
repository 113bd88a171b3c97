//! Percent-encoding (RFC 3986 § 2.1), the one implementation: titles on the CDN and in
//! policies, keys in S3 event notifications (form-encoded), cookie values, request paths.
//!
//! Decoding is strict: `%` must be followed by two hex digits (`u8::from_str_radix` would
//! also take `+1`), and the result must be UTF-8, as S3 keys and titles are.

use std::borrow::Cow;

/// How `+` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// A literal `+` (URL paths, cookie values: RFC 3986).
    Literal,
    /// A space (`application/x-www-form-urlencoded`, as S3 writes keys in event
    /// notifications: AWS S3 User Guide, "Event message structure").
    Space,
}

/// Why text does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` at this byte is not followed by two hex digits.
    BadEscape(usize),
    /// The decoded bytes are not UTF-8; the first bad byte is at this offset of the result.
    NotUtf8(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::BadEscape(at) => {
                write!(f, "a '%' at byte {at} is not followed by two hex digits")
            }
            DecodeError::NotUtf8(at) => write!(
                f,
                "it does not decode to UTF-8 (invalid byte at {at} of the decoded text)"
            ),
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+`, as `plus` says). Borrows when there is nothing to decode.
pub fn decode(text: &str, plus: Plus) -> Result<Cow<'_, str>, DecodeError> {
    let plus_is_space = plus == Plus::Space;
    let escaped = text.contains('%') || (plus_is_space && text.contains('+'));
    if !escaped {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|p| Some(hex_digit(p[0])? << 4 | hex_digit(p[1])?))
                    .ok_or(DecodeError::BadEscape(i))?;
                out.push(byte);
                i += 3;
                continue;
            }
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|e| DecodeError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// Encodes every byte for which `keep` is false as `%XX`, upper-case (RFC 3986 § 2.1:
/// "should use uppercase hexadecimal digits").
pub fn encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// RFC 3986 § 2.3 unreserved characters, and `/` (a path separator, kept as is).
pub fn is_unreserved_or_slash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus_as_asked() {
        assert_eq!(decode("a%20b+c", Plus::Literal).unwrap(), "a b+c");
        assert_eq!(decode("a%20b+c", Plus::Space).unwrap(), "a b c");
        assert_eq!(decode("%C3%A9", Plus::Literal).unwrap(), "é");
        assert_eq!(decode("%c3%a9", Plus::Literal).unwrap(), "é");
        assert!(matches!(
            decode("plain", Plus::Space),
            Ok(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn refuses_broken_escapes_and_non_utf8() {
        assert_eq!(
            decode("cut%7", Plus::Literal),
            Err(DecodeError::BadEscape(3))
        );
        assert_eq!(
            decode("bad%zz", Plus::Literal),
            Err(DecodeError::BadEscape(3))
        );
        // `u8::from_str_radix("+1", 16)` is Ok(1): the old decoders took `%+1`.
        assert_eq!(
            decode("a%+1", Plus::Literal),
            Err(DecodeError::BadEscape(1))
        );
        assert_eq!(decode("%FF", Plus::Literal), Err(DecodeError::NotUtf8(0)));
    }

    #[test]
    fn encodes_upper_case_and_round_trips() {
        let text = "My Show/Épisode 1 – #1 + 50% & 'more' 🎬";
        let encoded = encode(text, is_unreserved_or_slash);
        assert_eq!(
            encoded,
            "My%20Show/%C3%89pisode%201%20%E2%80%93%20%231%20%2B%2050%25%20%26%20%27more%27%20%F0%9F%8E%AC"
        );
        assert_eq!(decode(&encoded, Plus::Literal).unwrap(), text);
    }
}
