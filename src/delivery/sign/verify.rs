//! A verifier with CloudFront's semantics, for the edge and for `hlspipe verify`.
//!
//! What CloudFront does with a request for a private object (CloudFront Developer Guide,
//! "Serve private content with signed URLs and signed cookies"):
//! - Credentials come from the URL when it carries signing parameters, otherwise from the
//!   `CloudFront-*` cookies ("if a viewer uses a signed URL, CloudFront uses only the signed URL").
//! - `Policy` (custom) or `Expires` (canned; the policy is rebuilt from the requested URL and the
//!   expiry), `Signature`, `Key-Pair-Id`, optional `Hash-Algorithm` (SHA-1 when absent).
//! - The signature must verify with the public key of that key-pair id.
//! - Allowed strictly before `DateLessThan` and at or after `DateGreaterThan`.
//! - `Resource` must match the whole URL, query string included, with `*` and `?` wildcards;
//!   for signed URLs the signing parameters themselves are left out first.
//! - The viewer's IP must be inside `IpAddress`.
//!
//! Verified (key id, hash, policy, signature) tuples are remembered with their parsed policy, so
//! a player's hundreds of segment requests with the same cookies cost one signature check.

use super::encoding::decode_cloudfront_base64;
use super::keys::{HashAlgorithm, PublicKeySet};
use super::policy::Policy;
use super::wildcard;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

const VERIFIED_CACHE_LIMIT: usize = 16_384;

/// Where the credentials of an allowed request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    SignedUrl,
    Cookies,
}

/// What an allowed request was allowed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key_pair_id: String,
    pub hash_algorithm: HashAlgorithm,
    pub credentials: Credentials,
    /// The policy's `DateLessThan`.
    pub expires: u64,
}

/// Why CloudFront would answer 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No signing parameters in the URL and no `CloudFront-*` cookies.
    NoCredentials,
    /// One credential field is missing (its cookie or parameter name).
    Missing(&'static str),
    /// A field is present but unreadable (its name, and why).
    Malformed {
        field: &'static str,
        reason: String,
    },
    UnsupportedHashAlgorithm(String),
    UnknownKeyPairId(String),
    BadSignature,
    Expired {
        expires: u64,
        now: u64,
    },
    NotYetValid {
        not_before: u64,
        now: u64,
    },
    ResourceMismatch {
        resource: String,
        url: String,
    },
    SourceIpNotAllowed {
        ip: IpAddr,
        range: String,
    },
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoCredentials => {
                write!(f, "no signed-URL parameters and no CloudFront cookies")
            }
            DenyReason::Missing(field) => write!(f, "{field} is missing"),
            DenyReason::Malformed { field, reason } => write!(f, "{field} is malformed: {reason}"),
            DenyReason::UnsupportedHashAlgorithm(value) => {
                write!(f, "unsupported hash algorithm {value:?} (SHA1 or SHA256)")
            }
            DenyReason::UnknownKeyPairId(id) => write!(f, "unknown key-pair id {id:?}"),
            DenyReason::BadSignature => {
                write!(f, "the signature does not match the policy and key")
            }
            DenyReason::Expired { expires, now } => {
                write!(
                    f,
                    "expired: DateLessThan {expires} is not after now ({now})"
                )
            }
            DenyReason::NotYetValid { not_before, now } => {
                write!(
                    f,
                    "not yet valid: DateGreaterThan {not_before} is after now ({now})"
                )
            }
            DenyReason::ResourceMismatch { resource, url } => {
                write!(f, "the policy resource {resource:?} does not match {url:?}")
            }
            DenyReason::SourceIpNotAllowed { ip, range } => {
                write!(f, "source IP {ip} is outside the policy's range {range}")
            }
        }
    }
}

/// Allow, or deny with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(_) => write!(f, "allow"),
            Decision::Deny(reason) => write!(f, "deny: {reason}"),
        }
    }
}

/// The credential fields of one request, before checking.
struct Presented<'a> {
    credentials: Credentials,
    policy: Option<Cow<'a, str>>,
    expires: Option<Cow<'a, str>>,
    signature: Option<Cow<'a, str>>,
    key_pair_id: Option<Cow<'a, str>>,
    hash_algorithm: Option<Cow<'a, str>>,
    /// The URL the resource must match.
    match_url: Cow<'a, str>,
    names: &'static FieldNames,
}

struct FieldNames {
    policy: &'static str,
    expires: &'static str,
    signature: &'static str,
    key_pair_id: &'static str,
}

const URL_FIELDS: FieldNames = FieldNames {
    policy: "Policy",
    expires: "Expires",
    signature: "Signature",
    key_pair_id: "Key-Pair-Id",
};

const COOKIE_FIELDS: FieldNames = FieldNames {
    policy: "CloudFront-Policy",
    expires: "CloudFront-Expires",
    signature: "CloudFront-Signature",
    key_pair_id: "CloudFront-Key-Pair-Id",
};

type VerifiedKey = (String, HashAlgorithm, Vec<u8>, Vec<u8>);

/// Checks requests against a set of trusted public keys. Cheap to call repeatedly; share one
/// per process (it is `Sync`).
#[derive(Debug)]
pub struct Verifier {
    keys: PublicKeySet,
    verified: Mutex<HashMap<VerifiedKey, Arc<Policy>>>,
}

impl Verifier {
    pub fn new(keys: PublicKeySet) -> Verifier {
        Verifier {
            keys,
            verified: Mutex::new(HashMap::new()),
        }
    }

    fn verified(&self) -> MutexGuard<'_, HashMap<VerifiedKey, Arc<Policy>>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decide a request as CloudFront would.
    ///
    /// `url` is the full request URL as the viewer sent it (`https://host/path?query`);
    /// signed-URL parameters are read from its query. `cookie_header` is the request's `Cookie`
    /// header, if any. `now` is Unix seconds.
    pub fn verify_request(
        &self,
        url: &str,
        cookie_header: Option<&str>,
        source_ip: IpAddr,
        now: u64,
    ) -> Decision {
        match self.check(url, cookie_header, source_ip, now) {
            Ok(grant) => Decision::Allow(grant),
            Err(reason) => Decision::Deny(reason),
        }
    }

    fn check(
        &self,
        url: &str,
        cookie_header: Option<&str>,
        source_ip: IpAddr,
        now: u64,
    ) -> Result<Grant, DenyReason> {
        // Browsers never send fragments; a URL pasted with one is judged without it.
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let presented = presented_in_url(url)
            .or_else(|| cookie_header.and_then(|header| presented_in_cookies(url, header)))
            .ok_or(DenyReason::NoCredentials)?;
        let signed = signed_claim(&presented)?;
        let policy = self.verified_policy(&signed, presented.names)?;
        enforce_policy(&policy, &presented.match_url, source_ip, now)?;
        let (key_pair_id, hash_algorithm, _, _) = signed;
        Ok(Grant {
            key_pair_id,
            hash_algorithm,
            credentials: presented.credentials,
            expires: policy.date_less_than,
        })
    }

    /// The policy of a signed claim whose signature verifies with its key-pair id's public key:
    /// from the cache when this exact claim verified before, otherwise checked, parsed and
    /// remembered.
    fn verified_policy(
        &self,
        signed: &VerifiedKey,
        names: &FieldNames,
    ) -> Result<Arc<Policy>, DenyReason> {
        let cached = self.verified().get(signed).cloned();
        if let Some(policy) = cached {
            return Ok(policy);
        }
        let (key_pair_id, hash, policy_bytes, signature) = signed;
        let key = self
            .keys
            .get(key_pair_id)
            .ok_or_else(|| DenyReason::UnknownKeyPairId(key_pair_id.clone()))?;
        if !key.verify(policy_bytes, signature, *hash) {
            return Err(DenyReason::BadSignature);
        }
        let policy = Policy::parse_json(policy_bytes).map_err(|e| DenyReason::Malformed {
            field: names.policy,
            reason: e.to_string(),
        })?;
        let policy = Arc::new(policy);
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CACHE_LIMIT {
            verified.clear();
        }
        verified.insert(signed.clone(), Arc::clone(&policy));
        Ok(policy)
    }
}

/// The (key-pair id, hash algorithm, signed policy bytes, signature) a request presents. The
/// fields are read in a fixed order, so a request with several faults is always denied for the
/// same one.
fn signed_claim(presented: &Presented<'_>) -> Result<VerifiedKey, DenyReason> {
    let names = presented.names;
    let hash = match presented.hash_algorithm.as_deref() {
        None => HashAlgorithm::Sha1,
        Some(value) => HashAlgorithm::from_param(value)
            .ok_or_else(|| DenyReason::UnsupportedHashAlgorithm(value.to_owned()))?,
    };
    let key_pair_id = presented
        .key_pair_id
        .as_deref()
        .ok_or(DenyReason::Missing(names.key_pair_id))?;
    let signature_b64 = presented
        .signature
        .as_deref()
        .ok_or(DenyReason::Missing(names.signature))?;
    let signature =
        decode_cloudfront_base64(signature_b64).ok_or_else(|| DenyReason::Malformed {
            field: names.signature,
            reason: "not CloudFront base64".into(),
        })?;
    let policy_bytes = signed_policy_bytes(presented)?;
    Ok((key_pair_id.to_owned(), hash, policy_bytes, signature))
}

/// The exact bytes that were signed: the custom policy as sent, or the canned policy rebuilt
/// from the URL to match and `Expires`. A request carries one or the other, never both.
fn signed_policy_bytes(presented: &Presented<'_>) -> Result<Vec<u8>, DenyReason> {
    let names = presented.names;
    match (&presented.policy, &presented.expires) {
        (Some(_), Some(_)) => Err(DenyReason::Malformed {
            field: names.policy,
            reason: format!("both {} and {} are present", names.policy, names.expires),
        }),
        (None, None) => Err(DenyReason::Missing(names.policy)),
        (Some(policy_b64), None) => {
            decode_cloudfront_base64(policy_b64).ok_or_else(|| DenyReason::Malformed {
                field: names.policy,
                reason: "not CloudFront base64".into(),
            })
        }
        (None, Some(expires)) => {
            let expires: u64 = expires.parse().map_err(|_| DenyReason::Malformed {
                field: names.expires,
                reason: "not a whole number of seconds".into(),
            })?;
            Ok(canned_policy(&presented.match_url, expires)
                .to_json()
                .into_bytes())
        }
    }
}

/// The policy's conditions, in CloudFront's terms: allowed strictly before `DateLessThan` and
/// at or after `DateGreaterThan`, for a URL its `Resource` matches, from an address inside its
/// `IpAddress`.
fn enforce_policy(
    policy: &Policy,
    match_url: &str,
    source_ip: IpAddr,
    now: u64,
) -> Result<(), DenyReason> {
    if now >= policy.date_less_than {
        return Err(DenyReason::Expired {
            expires: policy.date_less_than,
            now,
        });
    }
    if let Some(not_before) = policy.date_greater_than {
        if now < not_before {
            return Err(DenyReason::NotYetValid { not_before, now });
        }
    }
    if let Some(resource) = &policy.resource {
        if !wildcard::matches(resource, match_url) {
            return Err(DenyReason::ResourceMismatch {
                resource: resource.clone(),
                url: match_url.to_owned(),
            });
        }
    }
    if let Some(range) = &policy.ip_address {
        if !range.contains(source_ip) {
            return Err(DenyReason::SourceIpNotAllowed {
                ip: source_ip,
                range: range.to_string(),
            });
        }
    }
    Ok(())
}

fn canned_policy(url: &str, expires: u64) -> Policy {
    Policy {
        resource: Some(url.to_owned()),
        date_less_than: expires,
        date_greater_than: None,
        ip_address: None,
    }
}

/// Signed-URL fields, when the query carries any signing parameter. The URL to match is the
/// request URL without them.
fn presented_in_url(url: &str) -> Option<Presented<'_>> {
    let (base, query) = url.split_once('?')?;
    let mut presented = Presented {
        credentials: Credentials::SignedUrl,
        policy: None,
        expires: None,
        signature: None,
        key_pair_id: None,
        hash_algorithm: None,
        match_url: Cow::Borrowed(url),
        names: &URL_FIELDS,
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut any = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // The names of super::url::SIGNING_PARAMETERS.
        let slot = match name {
            "Policy" => &mut presented.policy,
            "Expires" => &mut presented.expires,
            "Signature" => &mut presented.signature,
            "Key-Pair-Id" => &mut presented.key_pair_id,
            "Hash-Algorithm" => &mut presented.hash_algorithm,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        any = true;
        // The first occurrence wins; later duplicates are dropped, never matched.
        if slot.is_none() {
            *slot = Some(percent_decode(value));
        }
    }
    if !any {
        return None;
    }
    presented.match_url = if kept.is_empty() {
        Cow::Borrowed(base)
    } else {
        Cow::Owned(format!("{base}?{}", kept.join("&")))
    };
    Some(presented)
}

/// Cookie fields, when any `CloudFront-*` signing cookie is present. The URL to match is the
/// whole request URL.
fn presented_in_cookies<'a>(url: &'a str, header: &'a str) -> Option<Presented<'a>> {
    let mut presented = Presented {
        credentials: Credentials::Cookies,
        policy: None,
        expires: None,
        signature: None,
        key_pair_id: None,
        hash_algorithm: None,
        match_url: Cow::Borrowed(url),
        names: &COOKIE_FIELDS,
    };
    let mut any = false;
    for item in header.split(';') {
        let Some((name, value)) = item.trim().split_once('=') else {
            continue;
        };
        let slot = match name.trim() {
            "CloudFront-Policy" => &mut presented.policy,
            "CloudFront-Expires" => &mut presented.expires,
            "CloudFront-Signature" => &mut presented.signature,
            "CloudFront-Key-Pair-Id" => &mut presented.key_pair_id,
            "CloudFront-Hash-Algorithm" => &mut presented.hash_algorithm,
            _ => continue,
        };
        any = true;
        if slot.is_none() {
            // RFC 6265 § 4.1.1 allows a value in double quotes.
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            *slot = Some(Cow::Borrowed(value));
        }
    }
    any.then_some(presented)
}

/// Decode `%XX` escapes; text with a broken escape is kept as it is (CloudFront then
/// fails the signature, as it would for any other garbage).
fn percent_decode(value: &str) -> Cow<'_, str> {
    crate::percent::decode(value, crate::percent::Plus::Literal).unwrap_or(Cow::Borrowed(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_removed_before_matching() {
        let p = presented_in_url("https://h/a.m3u8?v=1&Policy=P&Signature=S&Key-Pair-Id=K&w=2")
            .unwrap();
        assert_eq!(p.match_url, "https://h/a.m3u8?v=1&w=2");
        assert_eq!(p.policy.as_deref(), Some("P"));
        let p = presented_in_url("https://h/a.m3u8?Expires=5&Signature=S&Key-Pair-Id=K").unwrap();
        assert_eq!(p.match_url, "https://h/a.m3u8");
        assert!(presented_in_url("https://h/a.m3u8?v=1").is_none());
        assert!(presented_in_url("https://h/a.m3u8").is_none());
    }

    #[test]
    fn cookies_are_read_with_spaces_and_quotes() {
        let p = presented_in_cookies(
            "https://h/x",
            "other=1;CloudFront-Policy=P; CloudFront-Signature=\"S\" ;CloudFront-Key-Pair-Id=K",
        )
        .unwrap();
        assert_eq!(p.policy.as_deref(), Some("P"));
        assert_eq!(p.signature.as_deref(), Some("S"));
        assert_eq!(p.key_pair_id.as_deref(), Some("K"));
        assert!(presented_in_cookies("https://h/x", "session=abc").is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("ab%7Ecd"), "ab~cd");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("cut%7"), "cut%7");
    }
}
