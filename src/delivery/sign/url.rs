//! Signed URLs, canned and custom (CloudFront Developer Guide, "Create a signed URL using a
//! canned policy" / "… a custom policy"). Parameters are appended in botocore's order
//! (`Expires` or `Policy`, then `Signature`, `Key-Pair-Id`), with `&` when the URL already has a
//! query string, and `Hash-Algorithm=SHA256` last when SHA-256 is used.

use super::cookies::Signer;
use super::error::SignError;
use super::keys::HashAlgorithm;
use super::policy::Policy;

/// Query parameters CloudFront reserves for signing; a URL to be signed must not carry them,
/// and they are left out when a signed URL is matched against its policy.
pub const SIGNING_PARAMETERS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

fn check_url(url: &str) -> Result<(), SignError> {
    let bad = |reason: &'static str| SignError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(bad("the scheme must be http or https"));
    }
    if !url.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            "only printable ASCII is allowed (percent-encode the rest)",
        ));
    }
    if url.contains('#') {
        return Err(bad("fragments are not sent to CloudFront; remove it"));
    }
    if let Some((_, query)) = url.split_once('?') {
        let reserved = query.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            SIGNING_PARAMETERS.contains(&name)
        });
        if reserved {
            return Err(bad("the URL already carries CloudFront signing parameters"));
        }
    }
    Ok(())
}

fn append(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(url.len() + 512);
    out.push_str(url);
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        out.push(separator);
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        separator = '&';
    }
    out
}

impl Signer {
    /// A canned-policy signed URL for exactly `url`, valid strictly before `expires`.
    pub fn signed_url_canned(&self, url: &str, expires: u64) -> Result<String, SignError> {
        check_url(url)?;
        let policy = Policy::new(url, expires)?;
        let signed = self.sign_policy_text(&policy.to_json())?;
        let expires = expires.to_string();
        Ok(self.finish(url, ("Expires", &expires), &signed.signature_b64))
    }

    /// A custom-policy signed URL: `url` carries the whole policy, which may cover more than
    /// `url` (a title prefix, for instance).
    pub fn signed_url_custom(&self, url: &str, policy: &Policy) -> Result<String, SignError> {
        check_url(url)?;
        let signed = self.sign_policy_text(&policy.to_json())?;
        Ok(self.finish(url, ("Policy", &signed.policy_b64), &signed.signature_b64))
    }

    fn finish(&self, url: &str, first: (&str, &str), signature: &str) -> String {
        let mut params = vec![
            first,
            ("Signature", signature),
            ("Key-Pair-Id", self.key_pair_id()),
        ];
        if self.hash_algorithm() != HashAlgorithm::Sha1 {
            params.push(("Hash-Algorithm", self.hash_algorithm().as_param()));
        }
        append(url, &params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_after_an_existing_query_string() {
        assert_eq!(
            append("https://h/a.m3u8", &[("A", "1"), ("B", "2")]),
            "https://h/a.m3u8?A=1&B=2"
        );
        assert_eq!(
            append("https://h/a.m3u8?v=3", &[("A", "1")]),
            "https://h/a.m3u8?v=3&A=1"
        );
    }

    #[test]
    fn refuses_urls_that_cannot_be_signed() {
        for bad in [
            "ftp://h/a",
            "https://h/a#t=10",
            "https://h/a b",
            "https://h/a?Signature=x",
            "https://h/a?x=1&Expires=5",
            "https://h/é",
        ] {
            assert!(check_url(bad).is_err(), "accepted {bad:?}");
        }
        check_url("https://h/a?Expiresx=1").unwrap();
    }
}
