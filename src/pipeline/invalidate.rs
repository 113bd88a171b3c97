//! The CDN seam of the pipeline: which paths to invalidate after a publish, and who does it.
//! CloudFront's implementation is [`crate::aws::cloudfront::CloudFrontInvalidator`].

use crate::error::Result;

/// Tells the CDN that cached copies of some paths are out of date. After a re-publish only
/// `master.m3u8` changed path-wise (every other object has a new, versioned key), so the
/// worker invalidates exactly that one path, never `/*` (DESIGN.md "Publish protocol").
/// The CloudFront implementation is `cdn::CloudFrontInvalidator`.
pub trait Invalidator: Send + Sync {
    /// `paths` are URL paths from the distribution's root (`/hls/shows/ep1/master.m3u8`),
    /// not percent-encoded: an implementation must encode them as CloudFront requires
    /// ("Specifying the objects to invalidate", CloudFront Developer Guide: URL-encode
    /// non-ASCII and unsafe characters).
    ///
    /// `reference` is the same for the same title and version ([`invalidation_reference`]):
    /// an event handled twice asks for the same invalidation, which CloudFront answers
    /// with the first one instead of making another (its `CallerReference`).
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()>;
}

/// The invalidation reference of a title's publish: `hlspipe-` and 32 hex digits of
/// SHA-256 over the title prefix and the version. Deterministic, so a retried job
/// repeats its request rather than adding one; at most 128 characters, as CloudFront's
/// `CallerReference` allows.
pub fn invalidation_reference(title_prefix: &str, version: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(title_prefix.as_bytes());
    h.update([0u8]);
    h.update(version.as_bytes());
    format!("hlspipe-{}", &hex::encode(h.finalize())[..32])
}

/// No CDN in front (the directory store, local tests).
pub struct NoInvalidation;

impl Invalidator for NoInvalidation {
    fn invalidate(&self, _paths: &[String], _reference: &str) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_references_are_per_title_and_version() {
        let a = invalidation_reference("hls/shows/ep1/", "0123456789ab");
        assert_eq!(a, invalidation_reference("hls/shows/ep1/", "0123456789ab"));
        assert_ne!(a, invalidation_reference("hls/shows/ep1/", "0123456789ac"));
        assert_ne!(a, invalidation_reference("hls/shows/ep2/", "0123456789ab"));
        assert!(a.starts_with("hlspipe-") && a.len() == 40);
    }
}
