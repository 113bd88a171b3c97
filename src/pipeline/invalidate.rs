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
    /// `reference` is the same for the same flip ([`invalidation_reference`]): an event
    /// handled twice asks for the same invalidation, which CloudFront answers with the first
    /// one instead of making another (its `CallerReference`).
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()>;

    /// [`Invalidator::invalidate`], and the id the CDN gave the invalidation: `None` when
    /// it gives none, or when `reference` was used before (CloudFront answers a repeated
    /// `CallerReference` with an error, not with the first invalidation's id).
    fn invalidate_with_id(&self, paths: &[String], reference: &str) -> Result<Option<String>> {
        self.invalidate(paths, reference).map(|()| None)
    }

    /// Returns once the invalidation `id` has reached every edge location (CloudFront's
    /// `Completed`), or fails after `within`. A CDN that has nothing to wait for returns
    /// at once.
    fn wait_until_done(&self, _id: &str, _within: std::time::Duration) -> Result<()> {
        Ok(())
    }
}

/// The invalidation reference of one flip of a title's master: `hlspipe-` and 32 hex digits
/// of SHA-256 over the title prefix, the version it replaced, the version now live and the
/// time the job that made it live started. Deterministic, so a retried job repeats its
/// request rather than adding one; but a title that flips B → A → B asks again on the
/// second flip to B (with the version alone, CloudFront would answer with the first
/// invalidation, long finished, and the edge would keep serving A's master). At most 128
/// characters, as CloudFront's `CallerReference` allows.
pub fn invalidation_reference(
    title_prefix: &str,
    replaced: &str,
    version: &str,
    started_at: u64,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [title_prefix, replaced, version] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(started_at.to_be_bytes());
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
    fn invalidation_references_are_per_flip() {
        let r = invalidation_reference;
        let a = r("hls/shows/ep1/", "aaaaaaaaaaaa", "0123456789ab", 100);
        assert_eq!(a, r("hls/shows/ep1/", "aaaaaaaaaaaa", "0123456789ab", 100));
        assert_ne!(a, r("hls/shows/ep1/", "aaaaaaaaaaaa", "0123456789ac", 100));
        assert_ne!(a, r("hls/shows/ep2/", "aaaaaaaaaaaa", "0123456789ab", 100));
        assert_ne!(a, r("hls/shows/ep1/", "bbbbbbbbbbbb", "0123456789ab", 100));
        // Regression (deployment issue, item 13): B -> A -> B made the second flip to B
        // repeat the first one's reference, and CloudFront invalidated nothing.
        assert_ne!(a, r("hls/shows/ep1/", "aaaaaaaaaaaa", "0123456789ab", 200));
        assert!(a.starts_with("hlspipe-") && a.len() == 40);
    }
}
