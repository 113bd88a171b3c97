//! The signer and the signed cookies it issues.
//!
//! Cookie names and attributes follow the CloudFront Developer Guide, "Set signed cookies using
//! a custom policy": `CloudFront-Policy`, `CloudFront-Signature`, `CloudFront-Key-Pair-Id`, plus
//! `CloudFront-Hash-Algorithm=SHA256` when SHA-256 is used ("Use SHA-256 and ECDSA"). AWS
//! recommends leaving out `Expires`/`Max-Age` so they are session cookies: the policy's
//! `DateLessThan` is what actually ends access.

use super::encoding::encode_cloudfront_base64;
use super::error::SignError;
use super::keys::{HashAlgorithm, KeySet};
use super::policy::{strip_whitespace, Policy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// How many distinct signed policies the signer remembers before it starts over. Cookies are
/// issued for (title, rounded expiry) pairs, so a few thousand covers every title being watched.
const SIGNATURE_CACHE_LIMIT: usize = 4096;

/// A signed policy, encoded for cookies and URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedPolicy {
    pub(crate) policy_b64: Arc<str>,
    pub(crate) signature_b64: Arc<str>,
}

type SignatureCacheKey = (String, HashAlgorithm, String);

/// Signs policies with the active key of a [`KeySet`], remembering recent signatures so that
/// issuing cookies for a (resource, expiry) already signed costs a map lookup, not an RSA
/// operation. PKCS#1 v1.5 and RFC 6979 ECDSA are deterministic, so a remembered signature is
/// the one signing again would produce.
#[derive(Debug)]
pub struct Signer {
    keys: KeySet,
    hash: HashAlgorithm,
    cache: Mutex<HashMap<SignatureCacheKey, SignedPolicy>>,
}

impl Signer {
    pub fn new(keys: KeySet, hash: HashAlgorithm) -> Signer {
        Signer {
            keys,
            hash,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    /// The active key-pair id.
    pub fn key_pair_id(&self) -> &str {
        self.keys.active().0
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<SignatureCacheKey, SignedPolicy>> {
        // A panic elsewhere while holding the lock cannot leave a half-written entry behind
        // (insert is one call), so a poisoned map is still a good map.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sign exact policy text (already compact) with the active key.
    pub(crate) fn sign_policy_text(&self, policy: &str) -> Result<SignedPolicy, SignError> {
        let (key_pair_id, key) = self.keys.active();
        let cache_key = (key_pair_id.to_owned(), self.hash, policy.to_owned());
        if let Some(hit) = self.cache().get(&cache_key) {
            return Ok(hit.clone());
        }
        let signature = key.sign(policy.as_bytes(), self.hash)?;
        let signed = SignedPolicy {
            policy_b64: encode_cloudfront_base64(policy.as_bytes()).into(),
            signature_b64: encode_cloudfront_base64(&signature).into(),
        };
        let mut cache = self.cache();
        if cache.len() >= SIGNATURE_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key, signed.clone());
        Ok(signed)
    }

    /// Signed cookies for a policy (normally [`Policy::for_title`]).
    pub fn signed_cookies(&self, policy: &Policy) -> Result<SignedCookies, SignError> {
        let signed = self.sign_policy_text(&policy.to_json())?;
        Ok(self.cookies_from(signed, policy.date_less_than))
    }

    /// Signed cookies for policy text written elsewhere. Whitespace is removed first, as AWS
    /// instructs; the text must parse as a CloudFront policy.
    pub fn signed_cookies_for_policy_text(&self, text: &str) -> Result<SignedCookies, SignError> {
        let compact = strip_whitespace(text);
        let policy = Policy::parse_json(compact.as_bytes())?;
        let signed = self.sign_policy_text(&compact)?;
        Ok(self.cookies_from(signed, policy.date_less_than))
    }

    fn cookies_from(&self, signed: SignedPolicy, expires: u64) -> SignedCookies {
        SignedCookies {
            policy: signed.policy_b64,
            signature: signed.signature_b64,
            key_pair_id: self.key_pair_id().to_owned(),
            hash_algorithm: self.hash,
            expires,
        }
    }
}

/// The three (or four) CloudFront cookies for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCookies {
    /// `CloudFront-Policy`: the policy JSON in CloudFront base64.
    pub policy: Arc<str>,
    /// `CloudFront-Signature`, in CloudFront base64.
    pub signature: Arc<str>,
    /// `CloudFront-Key-Pair-Id`.
    pub key_pair_id: String,
    /// Sent as `CloudFront-Hash-Algorithm` when not SHA-1.
    pub hash_algorithm: HashAlgorithm,
    /// The policy's `DateLessThan` (Unix seconds): when access ends.
    pub expires: u64,
}

impl SignedCookies {
    /// (cookie name, value) pairs, in the order they are set.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("CloudFront-Policy", &*self.policy),
            ("CloudFront-Signature", &*self.signature),
            ("CloudFront-Key-Pair-Id", self.key_pair_id.as_str()),
        ];
        if self.hash_algorithm != HashAlgorithm::Sha1 {
            pairs.push(("CloudFront-Hash-Algorithm", self.hash_algorithm.as_param()));
        }
        pairs
    }

    /// `Set-Cookie` header values, one per cookie.
    pub fn set_cookie_headers(&self, attributes: &CookieAttributes) -> Vec<String> {
        let suffix = attributes.suffix();
        self.pairs()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}{suffix}"))
            .collect()
    }

    /// The `Cookie` request header a browser would send back (for tests and non-browser clients).
    pub fn cookie_header(&self) -> String {
        self.pairs()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `SameSite` for the cookies. `None` is needed when the player page is on another site than
/// the CDN host (browsers then require `Secure`, which is always set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// Attributes shared by the CloudFront cookies. Always `Path=/; Secure; HttpOnly`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookieAttributes {
    domain: Option<String>,
    same_site: SameSite,
    max_age: Option<u64>,
}

impl CookieAttributes {
    /// Session cookies, host-only, `SameSite=Lax`.
    pub fn new() -> CookieAttributes {
        CookieAttributes::default()
    }

    /// `Domain=`: a domain shared by the player's site and the CDN's CNAME (cookies set by
    /// your site never reach `*.cloudfront.net`).
    pub fn domain(mut self, domain: &str) -> Result<CookieAttributes, SignError> {
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(SignError::BadCookieAttribute {
                attribute: "Domain",
                reason: "expected a host name (letters, digits, `-` and `.`)",
            });
        }
        self.domain = Some(domain.to_ascii_lowercase());
        Ok(self)
    }

    pub fn same_site(mut self, same_site: SameSite) -> CookieAttributes {
        self.same_site = same_site;
        self
    }

    /// `Max-Age=`: makes persistent cookies. AWS advises session cookies; the policy still
    /// decides when access ends.
    pub fn max_age(mut self, seconds: u64) -> CookieAttributes {
        self.max_age = Some(seconds);
        self
    }

    fn suffix(&self) -> String {
        let mut out = String::from("; Path=/");
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out.push_str("; Secure; HttpOnly; SameSite=");
        out.push_str(match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        });
        if let Some(max_age) = self.max_age {
            out.push_str(&format!("; Max-Age={max_age}"));
        }
        out
    }
}
