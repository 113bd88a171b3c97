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

/// Decode a CloudFront base64 value; `None` when it is not valid base64 once translated back.
pub fn decode_cloudfront_base64(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            other => other,
        })
        .collect();
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
}
