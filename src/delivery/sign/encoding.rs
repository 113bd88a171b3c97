//! CloudFront's URL-safe base64: standard base64, then `+`→`-`, `=`→`_`, `/`→`~`
//! (CloudFront Developer Guide, "Create a signed URL using a custom policy", step on
//! base64-encoding the policy and the signature). Not RFC 4648's base64url.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Encode bytes (a policy or a signature) the way CloudFront expects them in cookies and URLs.
pub fn encode_cloudfront_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            other => other,
        })
        .collect()
}

/// Decode a CloudFront base64 value; `None` unless it is exactly what
/// [`encode_cloudfront_base64`] writes.
///
/// The AWS documentation ("Set signed cookies using a custom policy", and the signed URL
/// pages) defines the value as base64 with `+`, `=` and `/` replaced by `-`, `_` and `~`. So
/// only `A-Z a-z 0-9 - _ ~` are taken, with the padding (`_`) in full: a value in the standard
/// alphabet (`+`, `/`, `=`), in RFC 4648's base64url (`-`, `_` as the 62nd and 63rd digits),
/// or without its padding is refused. What CloudFront itself tolerates beyond its documented
/// format is not documented; a stand-in that accepted more would let a signer that gets the
/// format wrong pass here and fail in production.
pub fn decode_cloudfront_base64(text: &str) -> Option<Vec<u8>> {
    let documented = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~');
    if !text.bytes().all(documented) || !text.len().is_multiple_of(4) {
        return None;
    }
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            other => other,
        })
        .collect();
    // STANDARD also requires the padding to be canonical and the unused bits to be zero.
    STANDARD.decode(standard.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_three_characters_and_round_trips() {
        // 0xfb 0xff → "+/8=" in standard base64.
        let encoded = encode_cloudfront_base64(&[0xfb, 0xff]);
        assert_eq!(encoded, "-~8_");
        assert_eq!(decode_cloudfront_base64(&encoded), Some(vec![0xfb, 0xff]));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode_cloudfront_base64("a"), None);
        assert_eq!(decode_cloudfront_base64("!!!!"), None);
    }

    /// Base64 decoding of cookies accepted the standard alphabet and missing padding.
    #[test]
    fn base64_decoding_of_cookies_accepts_only_cloudfronts_documented_alphabet() {
        // 0xfb 0xff: "+/8=" standard, "-_8" base64url without padding, "-~8_" CloudFront.
        assert_eq!(decode_cloudfront_base64("-~8_"), Some(vec![0xfb, 0xff]));
        for refused in [
            "+/8=", "-~8", "-_8", "-_8=", "-~8=", "-~8_ ", "-~8_\n", "-~9_",
        ] {
            assert_eq!(decode_cloudfront_base64(refused), None, "{refused:?}");
        }
        // A policy as signed: round trips, and its padding is required.
        let policy = br#"{"Statement":[{"Resource":"https://d/hls/ab/*"}]}"#;
        let encoded = encode_cloudfront_base64(policy);
        assert!(encoded.ends_with('_'), "{encoded}");
        assert_eq!(
            decode_cloudfront_base64(&encoded).as_deref(),
            Some(&policy[..])
        );
        assert_eq!(
            decode_cloudfront_base64(encoded.trim_end_matches('_')),
            None
        );
    }
}
