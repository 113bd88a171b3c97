//! Who may watch: the playback API's authoriser, chosen by configuration.
//!
//! ```text
//! Authorization: Bearer <credential> ─► Authoriser ─► Grant (every title | title prefixes)
//!                                                  └► Refusal (401, with the reason for the log)
//! Grant + the requested Title ─► allowed, or 403
//! ```
//!
//! - [`Authoriser::None`]: a public catalogue (or `dev` on loopback); everyone gets every title.
//! - [`Authoriser::Bearer`]: one shared token, compared in constant time ([`bearer`]).
//! - [`Authoriser::Jwt`]: the site's own login token, verified by `jsonwebtoken` against a PEM
//!   public key, a JWKS URL or an HS256 secret ([`jwt`], [`jwks`]).
//!
//! Plain library types, no web framework: the axum middleware in [`crate::delivery::api`] and
//! a Lambda handler call the same [`Authoriser::authorise`].

pub mod bearer;
pub mod jwks;
pub mod jwt;

use crate::title::Title;
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

pub use bearer::BearerToken;
pub use jwks::{Jwks, JwksSettings};
pub use jwt::{JwtAuthoriser, JwtKeys, JwtSettings};

/// Why an authoriser's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("bearer token: {0}")]
    BadToken(&'static str),
    #[error("JWT key: {0}")]
    BadKey(String),
    #[error("JWKS URL {url:?}: {reason}")]
    BadJwksUrl { url: String, reason: &'static str },
    #[error("JWT settings: {0}")]
    BadSettings(&'static str),
}

/// How callers prove they may ask for a title's cookies.
#[derive(Clone)]
pub enum Authoriser {
    /// Anyone may watch anything.
    None,
    /// `Authorization: Bearer <token>`, one token for every caller.
    Bearer(BearerToken),
    /// `Authorization: Bearer <JWT>`, from the site's own login.
    Jwt(Arc<JwtAuthoriser>),
}

/// What a caller who was let in may watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Every title.
    AnyTitle,
    /// Titles equal to, or below (by whole path segments), one of these prefixes; none when
    /// empty. Kept in NFC, as titles are.
    Prefixes(Vec<String>),
}

impl Grant {
    /// A grant from a token's claim: `shows/` and `shows` allow `shows/ep1` (`shows` also allows
    /// the title `shows`); `shows/ep1` allows that title (and titles below it); nothing allows
    /// `showsX/…`. An empty entry (or `/`) allows nothing: it would otherwise mean everything.
    pub fn prefixes<S: AsRef<str>>(entries: &[S]) -> Grant {
        let kept = entries
            .iter()
            .map(|e| e.as_ref().nfc().collect::<String>())
            .filter(|e| !e.trim_start_matches('/').is_empty())
            .collect();
        Grant::Prefixes(kept)
    }

    pub fn allows(&self, title: &Title) -> bool {
        match self {
            Grant::AnyTitle => true,
            Grant::Prefixes(prefixes) => prefixes.iter().any(|p| covers(p, title.as_str())),
        }
    }
}

/// `prefix` equals `title`, or is a run of `title`'s whole leading segments (with or without
/// the `/` that ends the last one).
fn covers(prefix: &str, title: &str) -> bool {
    match title.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Why a caller was turned away with 401: `reason` is for the server's log (never the
/// credential itself); `invalid_token` says whether a credential was presented at all
/// (RFC 6750 § 3: the `error` attribute is left out when the request had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub invalid_token: bool,
}

impl Refusal {
    fn missing() -> Refusal {
        Refusal {
            reason: "no bearer credential".into(),
            invalid_token: false,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            invalid_token: true,
        }
    }
}

impl Authoriser {
    /// Decides on the value of the request's `Authorization` header (if any).
    pub async fn authorise(&self, authorization: Option<&str>) -> Result<Grant, Refusal> {
        if let Authoriser::None = self {
            return Ok(Grant::AnyTitle);
        }
        let credential = authorization
            .and_then(bearer_credential)
            .ok_or_else(Refusal::missing)?;
        match self {
            Authoriser::None => Ok(Grant::AnyTitle),
            Authoriser::Bearer(token) => token.check(credential),
            Authoriser::Jwt(jwt) => jwt.verify(credential).await,
        }
    }

    /// Whether callers must present a credential.
    pub fn is_open(&self) -> bool {
        matches!(self, Authoriser::None)
    }
}

/// The credential of an `Authorization: Bearer <credential>` header value; the scheme is
/// case-insensitive (RFC 9110 § 11.1), the credential is not empty (RFC 6750 § 2.1).
pub fn bearer_credential(value: &str) -> Option<&str> {
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(t: &str) -> Title {
        Title::new(t).unwrap()
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        let grant = Grant::prefixes(&["shows/", "films/one"]);
        assert!(grant.allows(&title("shows/ep1")));
        assert!(grant.allows(&title("shows/season 2/ep1")));
        assert!(grant.allows(&title("films/one")));
        assert!(grant.allows(&title("films/one/extras")));
        assert!(!grant.allows(&title("showsX/ep1")));
        assert!(
            !grant.allows(&title("shows")),
            "`shows/` is the folder, not a title"
        );
        assert!(!grant.allows(&title("films/one-sequel")));
        assert!(!grant.allows(&title("films")));
        let grant = Grant::prefixes(&["shows"]);
        assert!(grant.allows(&title("shows")));
        assert!(grant.allows(&title("shows/ep1")));
        assert!(!grant.allows(&title("showsX")));
    }

    #[test]
    fn empty_lists_and_empty_entries_allow_nothing() {
        assert!(!Grant::prefixes::<&str>(&[]).allows(&title("a")));
        assert!(!Grant::prefixes(&["", "/"]).allows(&title("a")));
        assert!(Grant::AnyTitle.allows(&title("a")));
    }

    #[test]
    fn prefixes_are_compared_in_nfc_as_titles_are() {
        // "é" as e + U+0301 in the claim, precomposed in the title.
        let grant = Grant::prefixes(&["se\u{301}ries/"]);
        assert!(grant.allows(&title("s\u{e9}ries/ep1")));
    }

    #[test]
    fn bearer_credentials_are_parsed_case_insensitively() {
        assert_eq!(bearer_credential("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credential("bearer  abc "), Some("abc"));
        assert_eq!(bearer_credential("Bearer"), None);
        assert_eq!(bearer_credential("Bearer "), None);
        assert_eq!(bearer_credential("Basic abc"), None);
    }
}
